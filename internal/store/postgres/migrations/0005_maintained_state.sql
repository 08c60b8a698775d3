-- What the reports read, kept by ingest in the same transaction as the
-- change that moves it, so that a report reads a few rows per target
-- instead of every reconciler or every status change. `tidemark check`
-- recomputes it from the tables above and reports any difference.

-- Live reconcilers counted by the endpoint they apply, their current commit
-- and status ("" and "" for one registered that has not reported):
-- Environment State, Discrepancies, the hosts of a target.
CREATE TABLE endpoint_counts (
    endpoint_id BIGINT NOT NULL,
    commit_sha  TEXT COLLATE "C" NOT NULL,
    status      TEXT NOT NULL,
    hosts       INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, commit_sha, status)
);

-- Each reconciler's latest state for each assignment of each target on its
-- endpoint: its latest deployment of a commit that resolves to the
-- assignment. live is false once the reconciler is retired.
CREATE TABLE reconciler_assignments (
    reconciler_id    BIGINT NOT NULL,
    target_id        BIGINT NOT NULL,
    assignment_id    BIGINT NOT NULL,
    status           TEXT NOT NULL,
    status_since     TIMESTAMPTZ NOT NULL,
    last_changed     TIMESTAMPTZ NOT NULL,
    first_failure_at TIMESTAMPTZ,
    live             BOOLEAN NOT NULL,
    PRIMARY KEY (reconciler_id, target_id, assignment_id)
);
CREATE INDEX reconciler_assignments_outcome ON reconciler_assignments (assignment_id, live, status, status_since);
CREATE INDEX reconciler_assignments_target ON reconciler_assignments (target_id);

-- How each assignment fared on its target's live hosts (Environment
-- History, DORA, the rollout gate's counts): hosts by status, when the
-- first and the last succeeded, when the first failed. It outlives the
-- status history's retention.
CREATE TABLE assignment_outcomes (
    assignment_id    BIGINT PRIMARY KEY,
    success          INTEGER NOT NULL DEFAULT 0,
    failure          INTEGER NOT NULL DEFAULT 0,
    in_progress      INTEGER NOT NULL DEFAULT 0,
    first_success_at TIMESTAMPTZ,
    last_success_at  TIMESTAMPTZ,
    first_failure_at TIMESTAMPTZ
);

-- Where a live reconciler differs from its target's desired state, and
-- since when (kind: version, failed, unknown, not_reported; unplaced with
-- target_id 0 when no target has its endpoint). Stale hosts and targets
-- without hosts are found at read time.
CREATE TABLE drift (
    reconciler_id BIGINT NOT NULL,
    target_id     BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    since         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (reconciler_id, target_id)
);
CREATE INDEX drift_since ON drift (since, reconciler_id, target_id);
CREATE INDEX drift_target ON drift (target_id);

-- The first failure of each deployment (its history may be dropped).
ALTER TABLE deployments ADD COLUMN first_failure_at TIMESTAMPTZ;
UPDATE deployments SET first_failure_at = (SELECT min(changed_at) FROM deployment_history h
    WHERE h.deployment_id = deployments.id AND h.status = 'failure');

-- Commits resolving to an assignment; stale hosts by last report.
CREATE INDEX resolutions_assignment ON resolutions (target_id, assignment_id);
CREATE INDEX reconcilers_last_report ON reconcilers (last_report_at) WHERE retired_at IS NULL;

-- The tables above are filled by the hub when it starts (store.Rebuild).
CREATE TABLE maintained_state (
    built_version INTEGER NOT NULL
);
