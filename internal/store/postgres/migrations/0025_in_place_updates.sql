-- A report rewrites its reconciler's current state and its rows of
-- reconciler_assignments. When no index holds a column it changes and the
-- page has room, PostgreSQL updates the row in place (a heap-only tuple)
-- instead of adding an entry to every index: room in each page, and an
-- index of assignments without the status columns (the outcomes are
-- computed per assignment, the history of one host joins by assignment).
ALTER TABLE reconcilers SET (fillfactor = 80);
ALTER TABLE reconciler_assignments SET (fillfactor = 80);
DROP INDEX reconciler_assignments_outcome;
CREATE INDEX reconciler_assignments_assignment ON reconciler_assignments (assignment_id, live);
