-- Each deployment's first success, kept like its first failure (its
-- history may be dropped), and each reconciler's earliest success among
-- the deployments that resolve to an assignment. An assignment's outcome
-- counts when each host first succeeded on it: a host that later applies
-- the same commit again (in progress, then success) does not move when
-- the assignment's hosts had all succeeded, nor DORA's lead time.
ALTER TABLE deployments ADD COLUMN first_success_at INTEGER;

UPDATE deployments SET first_success_at = (SELECT min(changed_at) FROM deployment_history h
    WHERE h.deployment_id = deployments.id AND h.status = 'success');

-- A success whose history retention dropped: its run's start.
UPDATE deployments SET first_success_at = status_since
WHERE status = 'success' AND (first_success_at IS NULL OR first_success_at > status_since);

-- Filled by the hub when it starts (store.Rebuild: the maintained
-- version moved).
ALTER TABLE reconciler_assignments ADD COLUMN first_success_at INTEGER;
