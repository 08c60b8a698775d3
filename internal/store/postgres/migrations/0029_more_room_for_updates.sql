-- Every report rewrites its reconciler's row, and every status change its
-- rows of reconciler_assignments. An update is heap-only (HOT: no new
-- entry in every index of the table) only when the row's page has room
-- for the new version; with several batches in flight the old versions
-- cannot be pruned at once, and 20 % free space filled up: a third of
-- reconciler updates went through every index (OTLP benchmark). Half-full
-- pages make nearly all of them heap-only, and cost little: these tables
-- hold a row per reconciler (and target), not history. New pages keep the
-- space; old ones gain it as they are rewritten.
ALTER TABLE reconcilers SET (fillfactor = 50);
ALTER TABLE reconciler_assignments SET (fillfactor = 60);
