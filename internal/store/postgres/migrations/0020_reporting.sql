-- The reporting schema: the read-only SQL surface for dashboards (Grafana)
-- and other SQL readers. Its views and functions give the numbers of the
-- hub's reports (internal/reports) and hide the tables behind them, so that
-- dashboards survive changes to the tables. Readers never need the tables:
-- views run with their owner's rights, and the functions read only views.
--
-- The NOLOGIN group role tidemark_reporting may use this schema and nothing
-- else; a dashboard's login role joins it:
--   CREATE ROLE grafana LOGIN PASSWORD '...' IN ROLE tidemark_reporting;
-- Roles are shared by every database of a server, so the role is created
-- only when missing, and only when the migrating user may create roles.

CREATE SCHEMA reporting;
COMMENT ON SCHEMA reporting IS 'Tidemark reporting views for dashboards: read-only, stable across releases';

-- Every environment in the data.
CREATE VIEW reporting.environments AS
SELECT e.name AS environment, e.created_at
FROM environments e;

-- Every deployment target, with its names, manifests endpoint and scheduled
-- version (its latest assignment by time; NULL before the first one).
CREATE VIEW reporting.targets AS
SELECT ws.name AS workspace, app.name AS application, wl.name AS workload, env.name AS environment, t.name AS target,
       ep.storage_type AS manifests_storage_type, ep.repo AS manifests_repo, ep.branch AS manifests_branch, ep.path AS manifests_path,
       sv.version AS scheduled_version, sa.commit_sha AS scheduled_commit, sa.assigned_at AS scheduled_at,
       t.created_at, t.id AS target_id
FROM targets t
JOIN workloads wl ON wl.id = t.workload_id
JOIN applications app ON app.id = wl.application_id
JOIN workspaces ws ON ws.id = app.workspace_id
JOIN environments env ON env.id = t.environment_id
JOIN endpoints ep ON ep.id = t.endpoint_id
LEFT JOIN assignments sa ON sa.id = t.scheduled_assignment_id
LEFT JOIN workload_versions sv ON sv.id = sa.version_id;

-- Environment State: per target, live hosts (reconcilers, reported or
-- only registered) grouped by the version their current commit resolves to
-- and their status; not_reported for a registered reconciler that has not
-- reported yet. deployed_known is false for a commit the hub cannot place
-- (deployed_version is then '') and for hosts not reported yet. A target no
-- host reconciles has one row with hosts 0 and status NULL.
CREATE VIEW reporting.environment_state AS
WITH grouped AS (
    SELECT r.endpoint_id, r.commit_sha, COALESCE(NULLIF(r.status, ''), 'not_reported') AS status, count(*) AS hosts
    FROM reconcilers r
    WHERE r.retired_at IS NULL
    GROUP BY r.endpoint_id, r.commit_sha, r.status
), placed AS (
    SELECT t.id AS target_id, res.assignment_id, g.status, sum(g.hosts)::integer AS hosts
    FROM grouped g
    JOIN targets t ON t.endpoint_id = g.endpoint_id
    LEFT JOIN resolutions res ON res.target_id = t.id AND res.sha = g.commit_sha
    GROUP BY t.id, res.assignment_id, g.status
    UNION ALL
    SELECT t.id, NULL, NULL, 0
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
LEFT JOIN assignments a ON a.id = p.assignment_id
LEFT JOIN workload_versions v ON v.id = a.version_id;

-- Host State: what each live host (one reconciler on it) deploys for each
-- target on the endpoint it applies. A host not reported yet has status
-- not_reported, no commit, and since when its reconciler was registered.
-- The joins start from the targets, so that a filter on their names
-- narrows the rest.
CREATE VIEW reporting.host_state AS
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
LEFT JOIN assignments a ON a.id = res.assignment_id
LEFT JOIN workload_versions v ON v.id = a.version_id
LEFT JOIN assignments sa ON sa.id = t.scheduled_assignment_id
LEFT JOIN workload_versions sv ON sv.id = sa.version_id;

-- Live reconcilers that apply an endpoint no target has.
CREATE VIEW reporting.unplaced_reconcilers AS
SELECT h.name AS host, r.name AS reconciler, r.type AS reconciler_type, r.commit_sha AS commit,
       COALESCE(NULLIF(r.status, ''), 'not_reported') AS status, COALESCE(d.message, '') AS message,
       COALESCE(d.first_seen, r.created_at) AS first_seen, r.last_report_at,
       e.repo || CASE WHEN e.branch <> '' THEN '/' || e.branch ELSE '' END
              || CASE WHEN e.path <> '' THEN '/' || e.path ELSE '' END AS manifests_endpoint
FROM reconcilers r
JOIN hosts h ON h.id = r.host_id
JOIN endpoints e ON e.id = r.endpoint_id
LEFT JOIN deployments d ON d.id = r.current_deployment_id
WHERE r.retired_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM targets t WHERE t.endpoint_id = r.endpoint_id);

-- Environment History: each assignment with how its target's live hosts
-- fared. Each host counts once, by its latest report of a commit that
-- resolves to the assignment; hosts with none (registered ones too) count
-- as not reported.
-- all_succeeded_at is set when every host succeeded.
CREATE VIEW reporting.environment_history AS
SELECT tg.workspace, tg.application, tg.workload, tg.environment, tg.target,
       v.version, COALESCE(a.commit_sha, '') AS commit, a.assigned_at, v.build_time,
       o.success, o.failure, o.in_progress,
       greatest(0, n.hosts - o.success - o.failure - o.in_progress) AS not_reported,
       n.hosts,
       o.first_success_at,
       CASE WHEN n.hosts > 0 AND o.success = n.hosts THEN o.last_success_at END AS all_succeeded_at,
       f.first_failure_at,
       a.id AS assignment_id, tg.target_id
FROM assignments a
JOIN targets t ON t.id = a.target_id
JOIN reporting.targets tg ON tg.target_id = t.id
JOIN workload_versions v ON v.id = a.version_id
CROSS JOIN LATERAL (
    SELECT count(*)::integer AS hosts
    FROM reconcilers r
    WHERE r.endpoint_id = t.endpoint_id AND r.retired_at IS NULL
) n
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE l.status = 'success')::integer AS success,
           count(*) FILTER (WHERE l.status = 'failure')::integer AS failure,
           count(*) FILTER (WHERE l.status NOT IN ('success', 'failure'))::integer AS in_progress,
           min(l.status_since) FILTER (WHERE l.status = 'success') AS first_success_at,
           max(l.status_since) FILTER (WHERE l.status = 'success') AS last_success_at
    FROM (SELECT DISTINCT ON (r.id) d.status, d.status_since
          FROM resolutions res
          JOIN reconcilers r ON r.endpoint_id = t.endpoint_id AND r.retired_at IS NULL
          JOIN deployments d ON d.reconciler_id = r.id AND d.commit_sha = res.sha
          WHERE res.target_id = t.id AND res.assignment_id = a.id
          ORDER BY r.id, d.last_changed DESC, d.id DESC) l
) o
CROSS JOIN LATERAL (
    SELECT min(dh.changed_at) AS first_failure_at
    FROM resolutions res
    JOIN reconcilers r ON r.endpoint_id = t.endpoint_id AND r.retired_at IS NULL
    JOIN deployments d ON d.reconciler_id = r.id AND d.commit_sha = res.sha
    JOIN deployment_history dh ON dh.deployment_id = d.id AND dh.status = 'failure'
    WHERE res.target_id = t.id AND res.assignment_id = a.id
) f;

-- The sort key of an environment in promotion order: the names in
-- promotion_order (comma-separated) first, as given; then names that look
-- like a stage of a usual pipeline (dev, integration, test, staging,
-- production); then the rest. Sort by it, then by name (COLLATE "C").
CREATE FUNCTION reporting.environment_rank(environment text, promotion_order text DEFAULT '')
RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT CASE
        WHEN p.pos IS NOT NULL THEN ARRAY[0, p.pos]
        WHEN s.stage IS NOT NULL THEN ARRAY[1, s.stage]
        ELSE ARRAY[2, 0]
    END
    FROM (SELECT array_position(ARRAY(SELECT btrim(x, E' \t\r\n') FROM unnest(string_to_array(promotion_order, ',')) x
                                      WHERE btrim(x, E' \t\r\n') <> ''), environment) AS pos) p,
         (SELECT min(st.stage) AS stage
          FROM (VALUES (0, 'dev'), (0, 'development'), (0, 'sandbox'),
                       (1, 'int'), (1, 'integration'), (1, 'ci'),
                       (2, 'test'), (2, 'qa'), (2, 'uat'), (2, 'functional'),
                       (3, 'stage'), (3, 'staging'), (3, 'preprod'), (3, 'pre-prod'),
                       (4, 'prod'), (4, 'production'), (4, 'live')) st (stage, prefix)
          WHERE starts_with(lower(environment), st.prefix)) s;
END;

-- Drift: where reality differs from the desired state, since when.
-- Kinds: version (a host not at its target's scheduled version), failed
-- (failing at the scheduled version), unknown (a commit the hub cannot
-- place), stale (no report for longer than stale_after), not_reported (a
-- registered reconciler that has not reported yet; nothing else about it),
-- no_hosts (a target no host reconciles), unplaced (a reconciler whose
-- endpoint no target has; no target columns).
CREATE FUNCTION reporting.drift(stale_after interval DEFAULT interval '1 hour')
RETURNS TABLE (kind text, workspace text, application text, workload text, environment text, target text,
               host text, reconciler text, scheduled_version text, deployed_version text, commit text,
               status text, message text, since timestamptz, for_seconds double precision)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT d.kind, d.workspace, d.application, d.workload, d.environment, d.target,
           d.host, d.reconciler, d.scheduled_version, d.deployed_version, d.commit,
           d.status, d.message, d.since, extract(epoch FROM now() - d.since)::double precision
    FROM (
        SELECT 'unknown' AS kind, h.workspace, h.application, h.workload, h.environment, h.target,
               h.host, h.reconciler, COALESCE(h.scheduled_version, '') AS scheduled_version, h.version AS deployed_version,
               h.commit, h.status, h.message, h.first_seen AS since
        FROM reporting.host_state h
        WHERE NOT h.version_known AND h.status <> 'not_reported'
        UNION ALL
        SELECT 'version', h.workspace, h.application, h.workload, h.environment, h.target,
               h.host, h.reconciler, h.scheduled_version, h.version, h.commit, h.status, h.message,
               greatest(h.scheduled_at, h.first_seen)
        FROM reporting.host_state h
        WHERE h.version_known AND h.scheduled_at IS NOT NULL AND h.version <> h.scheduled_version
        UNION ALL
        SELECT 'failed', h.workspace, h.application, h.workload, h.environment, h.target,
               h.host, h.reconciler, h.scheduled_version, h.version, h.commit, h.status, h.message, h.status_since
        FROM reporting.host_state h
        WHERE h.up_to_date AND h.status = 'failure'
        UNION ALL
        SELECT 'stale', h.workspace, h.application, h.workload, h.environment, h.target,
               h.host, h.reconciler, COALESCE(h.scheduled_version, ''), h.version, h.commit, h.status, h.message,
               h.last_report_at
        FROM reporting.host_state h
        WHERE now() - h.last_report_at > drift.stale_after AND h.status <> 'not_reported'
        UNION ALL
        SELECT 'not_reported', h.workspace, h.application, h.workload, h.environment, h.target,
               h.host, h.reconciler, COALESCE(h.scheduled_version, ''), h.version, h.commit, h.status, h.message,
               h.status_since
        FROM reporting.host_state h
        WHERE h.status = 'not_reported'
        UNION ALL
        SELECT 'no_hosts', s.workspace, s.application, s.workload, s.environment, s.target,
               NULL, NULL, COALESCE(s.scheduled_version, ''), NULL, NULL, NULL, NULL, tg.created_at
        FROM reporting.environment_state s
        JOIN reporting.targets tg ON tg.target_id = s.target_id
        WHERE s.hosts = 0
        UNION ALL
        SELECT 'unplaced', NULL, NULL, NULL, NULL, NULL,
               u.host, u.reconciler, NULL, NULL, u.commit, u.status,
               'no target has the endpoint ' || u.manifests_endpoint || '; ' || u.message, u.first_seen
        FROM reporting.unplaced_reconcilers u
    ) d;
END;

-- DORA metrics per workload and environment over since..until: deployments
-- (assignments that reached success on every host) and per day, median lead
-- time (build time to success on every host), change failure rate
-- (assignments that failed on any host), median time to restore (first
-- failure to this or a later assignment of the target succeeding on every
-- host).
CREATE FUNCTION reporting.dora(since timestamptz, until timestamptz)
RETURNS TABLE (workspace text, application text, workload text, environment text,
               deployments integer, deployments_per_day double precision, lead_time_seconds double precision,
               changes integer, failed integer, change_failure_rate double precision,
               time_to_restore_seconds double precision)
LANGUAGE sql STABLE
BEGIN ATOMIC
    -- One pass over the assignments in the range, so that a filter on the
    -- names (WHERE workload = ...) narrows it; a failed assignment looks
    -- up its target's later assignments (also before until) for the
    -- restore.
    SELECT c.workspace, c.application, c.workload, c.environment,
           (count(*) FILTER (WHERE c.all_succeeded_at IS NOT NULL))::integer,
           CASE WHEN dora.until > dora.since
                THEN (count(*) FILTER (WHERE c.all_succeeded_at IS NOT NULL))::double precision
                     / (extract(epoch FROM dora.until - dora.since)::double precision / 86400)
                ELSE 0 END,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.all_succeeded_at - c.build_time)::double precision),
           count(*)::integer,
           (count(*) FILTER (WHERE c.first_failure_at IS NOT NULL))::integer,
           (count(*) FILTER (WHERE c.first_failure_at IS NOT NULL))::double precision / count(*),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN c.first_failure_at IS NOT NULL THEN
               (SELECT extract(epoch FROM l.all_succeeded_at - c.first_failure_at)::double precision
                FROM reporting.environment_history l
                WHERE l.target_id = c.target_id AND l.assigned_at >= c.assigned_at
                  AND l.all_succeeded_at > c.first_failure_at
                ORDER BY l.assigned_at, l.assignment_id
                LIMIT 1) END)
    FROM reporting.environment_history c
    WHERE c.assigned_at >= dora.since AND c.assigned_at <= dora.until
    GROUP BY c.workspace, c.application, c.workload, c.environment;
END;

-- Only the reporting role calls the functions (they read views that
-- nobody else may read anyway).
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA reporting FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA reporting REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- The group role: created when missing (and when this user may), then
-- given the reporting schema and nothing else. Later migrations' views and
-- functions in the schema are granted by the default privileges.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tidemark_reporting') THEN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolcreaterole OR rolsuper)) THEN
            BEGIN
                CREATE ROLE tidemark_reporting NOLOGIN;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- another database's migration created it meanwhile
            END;
        ELSE
            RAISE NOTICE 'role tidemark_reporting does not exist and % may not create roles: create it (CREATE ROLE tidemark_reporting NOLOGIN) and grant it the reporting schema (see the README)', current_user;
            RETURN;
        END IF;
    END IF;
    GRANT USAGE ON SCHEMA reporting TO tidemark_reporting;
    GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO tidemark_reporting;
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA reporting TO tidemark_reporting;
    ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON TABLES TO tidemark_reporting;
    ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT EXECUTE ON FUNCTIONS TO tidemark_reporting;
END
$$;
