-- SQLite indexes take names of any length and compare bytes already; see
-- the PostgreSQL migration of the same number. A status message is kept up
-- to a maximum (model.MaxStatusMessage); message_bytes is the length of the
-- message as reported when it was cut.
ALTER TABLE deployments ADD COLUMN message_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deployment_history ADD COLUMN message_bytes INTEGER NOT NULL DEFAULT 0;
