-- The outcomes are computed per assignment and the history of one host
-- joins by assignment: the status columns need not be indexed, and a
-- report's rewrite of its rows touches one index less.
DROP INDEX reconciler_assignments_outcome;
CREATE INDEX reconciler_assignments_assignment ON reconciler_assignments (assignment_id, live);
