-- The logical model: workspaces, applications, workloads, versions,
-- environments, targets and assignments (desired state); hosts,
-- reconcilers and deployments (real state). Every name is TEXT.
-- Times are timestamptz. Ids are identity columns.

CREATE TABLE workspaces (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE applications (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    name         TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE workloads (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id BIGINT NOT NULL REFERENCES applications (id),
    name           TEXT NOT NULL,
    source_repo    TEXT NOT NULL DEFAULT '',
    source_branch  TEXT NOT NULL DEFAULT '',
    source_path    TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (application_id, name)
);

CREATE TABLE workload_versions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workload_id  BIGINT NOT NULL REFERENCES workloads (id),
    version      TEXT NOT NULL,
    build        TEXT NOT NULL DEFAULT '',
    build_commit TEXT NOT NULL DEFAULT '',
    build_time   TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (workload_id, version)
);

CREATE TABLE environments (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

-- A manifests endpoint, shared by the targets that write to it and the
-- reconcilers that read from it. key is the normalized comparison form.
-- branch_key groups the endpoints of one branch (GitOps commits are
-- branch-wide); branch_prefix is the key of repository + branch, used to
-- place endpoints that reconcilers report in joined form.
CREATE TABLE endpoints (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,
    storage_type  TEXT NOT NULL,
    repo          TEXT NOT NULL,
    branch        TEXT NOT NULL DEFAULT '',
    path          TEXT NOT NULL DEFAULT '',
    joined        BOOLEAN NOT NULL,
    branch_key    TEXT NOT NULL DEFAULT '',
    branch_prefix TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX endpoints_branch_key ON endpoints (branch_key) WHERE branch_key <> '';

CREATE TABLE targets (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workload_id    BIGINT NOT NULL REFERENCES workloads (id),
    environment_id BIGINT NOT NULL REFERENCES environments (id),
    name           TEXT NOT NULL,
    endpoint_id    BIGINT NOT NULL REFERENCES endpoints (id),
    labels         JSONB NOT NULL DEFAULT '{}',
    -- The latest assignment (by time), kept by ingest: the scheduled version.
    scheduled_assignment_id BIGINT,
    created_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (workload_id, environment_id, name)
);
CREATE INDEX targets_endpoint ON targets (endpoint_id);
CREATE INDEX targets_environment ON targets (environment_id);

-- The desired state: a version assigned to a target by a GitOps commit.
-- commit_sha is NULL while pending (waiting for the Flux Kustomization
-- named by flux_source to report its revision).
CREATE TABLE assignments (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id   BIGINT NOT NULL REFERENCES targets (id),
    version_id  BIGINT NOT NULL REFERENCES workload_versions (id),
    commit_sha  TEXT,
    flux_source TEXT NOT NULL DEFAULT '',
    assigned_at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX assignments_target_commit ON assignments (target_id, commit_sha) WHERE commit_sha IS NOT NULL;
CREATE INDEX assignments_target_latest ON assignments (target_id, assigned_at DESC, id DESC);
CREATE INDEX assignments_commit ON assignments (commit_sha);
CREATE INDEX assignments_pending ON assignments (flux_source) WHERE commit_sha IS NULL;

-- When each GitOps commit was first seen on each endpoint, by a report or
-- an assignment. The minimum over a branch's endpoints is when the commit
-- was first seen on that branch.
CREATE TABLE commits (
    endpoint_id BIGINT NOT NULL REFERENCES endpoints (id),
    sha         TEXT NOT NULL,
    first_seen  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (endpoint_id, sha)
);
CREATE INDEX commits_sha ON commits (sha);

-- The version in effect for a target at a commit (the correlation
-- rules), kept current by ingest. assignment_id NULL: unknown version.
CREATE TABLE resolutions (
    target_id     BIGINT NOT NULL REFERENCES targets (id),
    sha           TEXT NOT NULL,
    assignment_id BIGINT REFERENCES assignments (id),
    PRIMARY KEY (target_id, sha)
);

CREATE TABLE hosts (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL,
    labels     JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL
);

-- A reconciler on a host. current_deployment_id is its latest report, and
-- commit_sha, status and status_since repeat that deployment's, so that
-- fleet-wide reports need not read the deployments table;
-- retired_at is set when its resource is deleted (it stops counting as a
-- host of its target; its history stays).
CREATE TABLE reconcilers (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host_id               BIGINT NOT NULL REFERENCES hosts (id),
    name                  TEXT NOT NULL,
    type                  TEXT NOT NULL,
    endpoint_id           BIGINT NOT NULL REFERENCES endpoints (id),
    current_deployment_id BIGINT,
    commit_sha            TEXT NOT NULL DEFAULT '',
    status                TEXT NOT NULL DEFAULT '',
    status_since          TIMESTAMPTZ,
    last_report_at        TIMESTAMPTZ NOT NULL,
    retired_at            TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL,
    UNIQUE (host_id, name)
);
CREATE INDEX reconcilers_endpoint ON reconcilers (endpoint_id) WHERE retired_at IS NULL;
-- Environment State counts live reconcilers by (endpoint, commit, status).
CREATE INDEX reconcilers_state ON reconcilers (endpoint_id, commit_sha, status)
    WHERE retired_at IS NULL AND current_deployment_id IS NOT NULL;

-- The real state: what a reconciler applied of one commit.
CREATE TABLE deployments (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reconciler_id BIGINT NOT NULL REFERENCES reconcilers (id),
    commit_sha    TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('success', 'failure', 'in_progress')),
    message       TEXT NOT NULL DEFAULT '',
    first_seen    TIMESTAMPTZ NOT NULL,
    status_since  TIMESTAMPTZ NOT NULL,
    last_changed  TIMESTAMPTZ NOT NULL,
    UNIQUE (reconciler_id, commit_sha)
);
CREATE INDEX deployments_commit ON deployments (commit_sha);

-- Every status change, never overwritten.
CREATE TABLE deployment_history (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment_id BIGINT NOT NULL REFERENCES deployments (id),
    status        TEXT NOT NULL,
    message       TEXT NOT NULL DEFAULT '',
    changed_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX deployment_history_deployment ON deployment_history (deployment_id, changed_at);
CREATE INDEX deployment_history_time ON deployment_history (changed_at);

-- Azure Resource Graph poller configurations pushed through the API (in
-- Kubernetes they are AzureResourceGraph resources). spec is the resource's
-- spec as JSON; it names credentials, never holds them.
CREATE TABLE azure_resource_graphs (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    spec       JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
