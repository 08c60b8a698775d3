-- Status history is the table every report appends to. Its foreign key
-- cost each appended row a lookup and a lock of its deployment (half the
-- insert's time); ingest only appends rows for the deployments it has just
-- written in the same transaction, and deployments are never deleted.
ALTER TABLE deployment_history DROP CONSTRAINT deployment_history_deployment_id_fkey;
