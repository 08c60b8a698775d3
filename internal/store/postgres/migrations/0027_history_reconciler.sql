-- Time travel asks, for each reconciler, for its latest status change at or
-- before a time. With the reconciler on the history row that is one index
-- probe per reconciler (and month); through deployments it was one per
-- deployment the reconciler ever had, and a reconciler following a branch
-- has a deployment per commit it applied. A deployment never changes
-- reconciler, so the copy never goes stale.
ALTER TABLE deployment_history ADD COLUMN reconciler_id bigint;
UPDATE deployment_history h SET reconciler_id = d.reconciler_id FROM deployments d WHERE d.id = h.deployment_id;
ALTER TABLE deployment_history ALTER COLUMN reconciler_id SET NOT NULL;
CREATE INDEX deployment_history_reconciler ON deployment_history (reconciler_id, changed_at, id);
-- Nothing reads history by time alone on PostgreSQL (retention drops whole
-- months; every report reads it by deployment or reconciler): the time
-- index only cost each appended row an index insert.
DROP INDEX deployment_history_time;
