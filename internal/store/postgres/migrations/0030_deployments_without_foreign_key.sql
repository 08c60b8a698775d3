-- A deployment's foreign key to its reconciler cost each inserted row a
-- lookup and a key-share lock of the reconciler (inserting 1,000
-- deployments: 17-21 ms with it, 11-12 ms without), although ingest
-- inserts deployments only for reconcilers it has read and locked in the
-- same transaction, and reconcilers are never deleted (the status
-- history lost its key to deployments for the same reason, 0026).
ALTER TABLE deployments DROP CONSTRAINT deployments_reconciler_id_fkey;
