-- Every report rewrites its reconciler's row, every status change its
-- rows of reconciler_assignments and the counts of its endpoint and
-- assignment, and a deployment is rewritten when its status moves (in
-- progress, then success or failure). An update is heap-only (HOT: no new
-- entry in every index of the table) only when the row's page has room
-- for the new version. With several batches in flight the old versions
-- cannot be pruned at once, and 20-30 % free space filled up: a third of
-- reconciler updates and over half of deployment updates went through
-- every index (OTLP benchmark; single writer, updating 1,000 deployments
-- 9.5 -> 3.2 ms with half-full pages). Half-full pages make nearly all of
-- them heap-only, and since PostgreSQL prunes a page once its free space
-- falls below the fillfactor's target, the chains of old versions that
-- readers step over stay short. The price is space: deployments, the
-- largest table, take up to 1.4 times the room they took at 70 % (their
-- pages are left alone once their reconcilers move on), less the index
-- entries that non-HOT updates no longer add. New pages keep the space;
-- old ones gain it as they are rewritten.
ALTER TABLE reconcilers SET (fillfactor = 50);
ALTER TABLE reconciler_assignments SET (fillfactor = 60);
ALTER TABLE deployments SET (fillfactor = 50);
ALTER TABLE endpoint_counts SET (fillfactor = 50);
ALTER TABLE assignment_outcomes SET (fillfactor = 50);
