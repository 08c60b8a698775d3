-- Each deployment's first success, kept like its first failure (its
-- history may be dropped), and each reconciler's earliest success among
-- the deployments that resolve to an assignment. An assignment's outcome
-- counts when each host first succeeded on it: a host that later applies
-- the same commit again (in progress, then success) does not move when
-- the assignment's hosts had all succeeded, nor DORA's lead time.
ALTER TABLE deployments ADD COLUMN first_success_at TIMESTAMPTZ;

UPDATE deployments d SET first_success_at = h.first_success
FROM (SELECT deployment_id, min(changed_at) AS first_success
      FROM deployment_history WHERE status = 'success' GROUP BY deployment_id) h
WHERE h.deployment_id = d.id;

-- A success whose history retention dropped: its run's start.
UPDATE deployments SET first_success_at = status_since
WHERE status = 'success' AND (first_success_at IS NULL OR first_success_at > status_since);

-- Filled by the hub when it starts (store.Rebuild: the maintained
-- version moved).
ALTER TABLE reconciler_assignments ADD COLUMN first_success_at TIMESTAMPTZ;

-- Environment History for dashboards reads the maintained outcomes, as the
-- hub's own report does: the same numbers, and the first failures outlive
-- the history's retention.
CREATE OR REPLACE VIEW reporting.environment_history AS
SELECT tg.workspace, tg.application, tg.workload, tg.environment, tg.target,
       v.version, COALESCE(a.commit_sha, '') AS commit, a.assigned_at, v.build_time,
       COALESCE(o.success, 0)::integer AS success, COALESCE(o.failure, 0)::integer AS failure,
       COALESCE(o.in_progress, 0)::integer AS in_progress,
       greatest(0, n.hosts - COALESCE(o.success + o.failure + o.in_progress, 0))::integer AS not_reported,
       n.hosts,
       o.first_success_at,
       CASE WHEN n.hosts > 0 AND o.success = n.hosts THEN o.last_success_at END AS all_succeeded_at,
       o.first_failure_at,
       a.id AS assignment_id, tg.target_id
FROM assignments a
JOIN targets t ON t.id = a.target_id
JOIN reporting.targets tg ON tg.target_id = t.id
JOIN workload_versions v ON v.id = a.version_id
LEFT JOIN assignment_outcomes o ON o.assignment_id = a.id
CROSS JOIN LATERAL (
    SELECT count(*)::integer AS hosts
    FROM reconcilers r
    WHERE r.endpoint_id = t.endpoint_id AND r.retired_at IS NULL
) n;
