-- The reporting views resolve a host's commit to its version through the
-- resolution's own copy of it (0041), as the hub's reports do: one probe
-- instead of two. Columns and their order are unchanged.
CREATE OR REPLACE VIEW reporting.environment_state AS
WITH grouped AS (
    SELECT r.endpoint_id, r.commit_sha, COALESCE(NULLIF(r.status, ''), 'not_reported') AS status, count(*) AS hosts
    FROM reconcilers r
    WHERE r.retired_at IS NULL
    GROUP BY r.endpoint_id, r.commit_sha, r.status
), placed AS (
    SELECT t.id AS target_id, res.assignment_id, res.version_id, g.status, sum(g.hosts)::integer AS hosts
    FROM grouped g
    JOIN targets t ON t.endpoint_id = g.endpoint_id
    LEFT JOIN resolutions res ON res.target_id = t.id AND res.sha = g.commit_sha
    GROUP BY t.id, res.assignment_id, res.version_id, g.status
    UNION ALL
    SELECT t.id, NULL, NULL, NULL, 0
    FROM targets t
    WHERE NOT EXISTS (SELECT 1 FROM reconcilers r WHERE r.endpoint_id = t.endpoint_id AND r.retired_at IS NULL)
)
SELECT tg.workspace, tg.application, tg.workload, tg.environment, tg.target,
       tg.scheduled_version, tg.scheduled_commit, tg.scheduled_at,
       COALESCE(v.version, '') AS deployed_version,
       p.assignment_id IS NOT NULL AS deployed_known,
       p.status, p.hosts,
       (p.assignment_id IS NOT NULL AND tg.scheduled_at IS NOT NULL AND v.version = tg.scheduled_version) AS up_to_date,
       tg.target_id
FROM placed p
JOIN reporting.targets tg ON tg.target_id = p.target_id
LEFT JOIN workload_versions v ON v.id = p.version_id;

CREATE OR REPLACE VIEW reporting.host_state AS
SELECT h.name AS host, h.type AS host_type, r.name AS reconciler, r.type AS reconciler_type,
       ws.name AS workspace, app.name AS application, wl.name AS workload, env.name AS environment, t.name AS target,
       COALESCE(v.version, '') AS version, res.assignment_id IS NOT NULL AS version_known,
       r.commit_sha AS commit, COALESCE(NULLIF(r.status, ''), 'not_reported') AS status, COALESCE(d.message, '') AS message,
       COALESCE(r.status_since, r.created_at) AS status_since, r.last_report_at, COALESCE(d.first_seen, r.created_at) AS first_seen,
       sv.version AS scheduled_version, sa.assigned_at AS scheduled_at,
       (res.assignment_id IS NOT NULL AND sa.assigned_at IS NOT NULL AND v.version = sv.version) AS up_to_date,
       t.id AS target_id
FROM targets t
JOIN workloads wl ON wl.id = t.workload_id
JOIN applications app ON app.id = wl.application_id
JOIN workspaces ws ON ws.id = app.workspace_id
JOIN environments env ON env.id = t.environment_id
JOIN reconcilers r ON r.endpoint_id = t.endpoint_id AND r.retired_at IS NULL
JOIN hosts h ON h.id = r.host_id
LEFT JOIN deployments d ON d.id = r.current_deployment_id
LEFT JOIN resolutions res ON res.target_id = t.id AND res.sha = r.commit_sha
LEFT JOIN workload_versions v ON v.id = res.version_id
LEFT JOIN assignments sa ON sa.id = t.scheduled_assignment_id
LEFT JOIN workload_versions sv ON sv.id = sa.version_id;
