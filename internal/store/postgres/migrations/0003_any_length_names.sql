-- Names of any length, compared byte for byte as in SQLite.
--
-- A B-tree index entry holds at most about 2,700 bytes, so a unique
-- constraint on a name column refuses longer names. Uniqueness is kept by
-- unique indexes on a SHA-256 digest of the name (name_key), and lookups by
-- name use hash indexes, which take values of any length. Names, keys and
-- commits use the "C" collation: byte order, the same as SQLite's, whatever
-- the database's locale.

CREATE FUNCTION name_key(text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$SELECT sha256(convert_to($1, 'UTF8'))$$;

ALTER TABLE workspaces DROP CONSTRAINT workspaces_name_key;
ALTER TABLE workspaces ALTER COLUMN name TYPE TEXT COLLATE "C";
CREATE UNIQUE INDEX workspaces_name ON workspaces (name_key(name));
CREATE INDEX workspaces_name_lookup ON workspaces USING hash (name);

ALTER TABLE applications DROP CONSTRAINT applications_workspace_id_name_key;
ALTER TABLE applications ALTER COLUMN name TYPE TEXT COLLATE "C";
CREATE UNIQUE INDEX applications_name ON applications (workspace_id, name_key(name));
CREATE INDEX applications_name_lookup ON applications USING hash (name);

ALTER TABLE workloads DROP CONSTRAINT workloads_application_id_name_key;
ALTER TABLE workloads ALTER COLUMN name TYPE TEXT COLLATE "C";
CREATE UNIQUE INDEX workloads_name ON workloads (application_id, name_key(name));
CREATE INDEX workloads_name_lookup ON workloads USING hash (name);

ALTER TABLE workload_versions DROP CONSTRAINT workload_versions_workload_id_version_key;
ALTER TABLE workload_versions ALTER COLUMN version TYPE TEXT COLLATE "C";
CREATE UNIQUE INDEX workload_versions_version ON workload_versions (workload_id, name_key(version));
CREATE INDEX workload_versions_version_lookup ON workload_versions USING hash (version);

ALTER TABLE environments DROP CONSTRAINT environments_name_key;
ALTER TABLE environments ALTER COLUMN name TYPE TEXT COLLATE "C";
CREATE UNIQUE INDEX environments_name ON environments (name_key(name));
CREATE INDEX environments_name_lookup ON environments USING hash (name);

ALTER TABLE endpoints DROP CONSTRAINT endpoints_key_key;
DROP INDEX endpoints_branch_key;
ALTER TABLE endpoints ALTER COLUMN key TYPE TEXT COLLATE "C",
    ALTER COLUMN branch_key TYPE TEXT COLLATE "C",
    ALTER COLUMN branch_prefix TYPE TEXT COLLATE "C";
CREATE UNIQUE INDEX endpoints_key ON endpoints (name_key(key));
CREATE INDEX endpoints_key_lookup ON endpoints USING hash (key);
CREATE INDEX endpoints_branch_key ON endpoints USING hash (branch_key) WHERE branch_key <> '';

ALTER TABLE targets DROP CONSTRAINT targets_workload_id_environment_id_name_key;
ALTER TABLE targets ALTER COLUMN name TYPE TEXT COLLATE "C";
CREATE UNIQUE INDEX targets_name ON targets (workload_id, environment_id, name_key(name));
CREATE INDEX targets_workload ON targets (workload_id, environment_id);
CREATE INDEX targets_name_lookup ON targets USING hash (name);

DROP INDEX assignments_pending;
ALTER TABLE assignments ALTER COLUMN flux_source TYPE TEXT COLLATE "C",
    ALTER COLUMN commit_sha TYPE TEXT COLLATE "C";
CREATE INDEX assignments_pending ON assignments USING hash (flux_source) WHERE commit_sha IS NULL;

ALTER TABLE hosts DROP CONSTRAINT hosts_name_key;
ALTER TABLE hosts ALTER COLUMN name TYPE TEXT COLLATE "C";
CREATE UNIQUE INDEX hosts_name ON hosts (name_key(name));
CREATE INDEX hosts_name_lookup ON hosts USING hash (name);

ALTER TABLE reconcilers DROP CONSTRAINT reconcilers_host_id_name_key;
DROP INDEX reconcilers_source;
ALTER TABLE reconcilers ALTER COLUMN name TYPE TEXT COLLATE "C",
    ALTER COLUMN commit_sha TYPE TEXT COLLATE "C",
    ALTER COLUMN source TYPE TEXT COLLATE "C";
CREATE UNIQUE INDEX reconcilers_name ON reconcilers (host_id, name_key(name));
CREATE INDEX reconcilers_host ON reconcilers (host_id);
CREATE INDEX reconcilers_source ON reconcilers USING hash (source) WHERE source <> '' AND retired_at IS NULL;

ALTER TABLE commits ALTER COLUMN sha TYPE TEXT COLLATE "C";
ALTER TABLE resolutions ALTER COLUMN sha TYPE TEXT COLLATE "C";
ALTER TABLE deployments ALTER COLUMN commit_sha TYPE TEXT COLLATE "C";

ALTER TABLE azure_resource_graphs DROP CONSTRAINT azure_resource_graphs_name_key;
ALTER TABLE azure_resource_graphs ALTER COLUMN name TYPE TEXT COLLATE "C";
CREATE UNIQUE INDEX azure_resource_graphs_name ON azure_resource_graphs (name_key(name));
CREATE INDEX azure_resource_graphs_name_lookup ON azure_resource_graphs USING hash (name);

-- A status message is kept up to a maximum (model.MaxStatusMessage);
-- message_bytes is the length of the message as reported when it was cut.
ALTER TABLE deployments ADD COLUMN message_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deployment_history ADD COLUMN message_bytes INTEGER NOT NULL DEFAULT 0;
