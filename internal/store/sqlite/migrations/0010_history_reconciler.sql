-- Time travel asks, for each reconciler, for its latest status change at or
-- before a time. With the reconciler on the history row that is one index
-- probe per reconciler; through deployments it was one per deployment the
-- reconciler ever had, and a reconciler following a branch has a deployment
-- per commit it applied. A deployment never changes reconciler, so the copy
-- never goes stale.
ALTER TABLE deployment_history ADD COLUMN reconciler_id BIGINT NOT NULL DEFAULT 0;
UPDATE deployment_history SET reconciler_id = (SELECT d.reconciler_id FROM deployments d WHERE d.id = deployment_history.deployment_id);
CREATE INDEX deployment_history_reconciler ON deployment_history (reconciler_id, changed_at, id);
