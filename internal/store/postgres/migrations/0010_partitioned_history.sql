-- Status history partitioned by month (of changed_at, in UTC), so that it
-- can last years: retention drops whole partitions instead of deleting rows,
-- and a query bounded in time reads only the months it covers.
--
-- Inserts still name deployment_history; PostgreSQL routes each row to the
-- partition of its month. A DEFAULT partition takes rows whose month has no
-- partition yet (a late report from long ago, a host whose clock is far
-- ahead), so an insert never fails for its time; the hub moves them into a
-- partition of their own when it next prepares partitions.
--
-- The table is rebuilt and its rows copied: a partitioned table's primary
-- key must include the partition key, and PostgreSQL 15 has no identity
-- columns on partitioned tables (id takes its values from a sequence).
-- Nothing references deployment_history by foreign key.

ALTER TABLE deployment_history RENAME TO deployment_history_unpartitioned;
ALTER INDEX deployment_history_pkey RENAME TO deployment_history_unpartitioned_pkey;
ALTER INDEX deployment_history_deployment RENAME TO deployment_history_unpartitioned_deployment;
ALTER INDEX deployment_history_time RENAME TO deployment_history_unpartitioned_time;

-- LIKE keeps every column (with later ones) in order, its type, collation,
-- NOT NULL and default; not the identity, which partitioned tables refuse.
CREATE TABLE deployment_history (LIKE deployment_history_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (changed_at);
CREATE TABLE deployment_history_default PARTITION OF deployment_history DEFAULT;

-- deployment_history_add_partition creates the partition of the month (UTC)
-- of at, named deployment_history_pYYYY_MM, moving into it the rows of that
-- month waiting in the default partition. It returns the new partition's
-- name, or NULL when the month already has one. The default partition is
-- locked so that no row of the month lands there meanwhile; rows of other
-- months keep flowing to their partitions. deployments is locked before
-- it, as writers lock it before they insert history: attaching the
-- partition adds its foreign key, which locks deployments, and taking the
-- locks in the writers' order leaves no deadlock.
CREATE FUNCTION deployment_history_add_partition(at timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo   timestamp := date_trunc('month', at AT TIME ZONE 'UTC');
    hi   timestamp := lo + interval '1 month';
    part text      := 'deployment_history_p' || to_char(lo, 'YYYY_MM');
BEGIN
    LOCK TABLE deployments IN SHARE ROW EXCLUSIVE MODE;
    LOCK TABLE deployment_history_default IN ACCESS EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'deployment_history'::regclass AND c.relname = part) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE deployment_history INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('WITH moved AS (DELETE FROM deployment_history_default WHERE changed_at >= $1 AND changed_at < $2 RETURNING *)
                    INSERT INTO %I SELECT * FROM moved', part)
        USING lo AT TIME ZONE 'UTC', hi AT TIME ZONE 'UTC';
    EXECUTE format('ALTER TABLE deployment_history ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part,
        to_char(lo, 'YYYY-MM-DD HH24:MI:SS') || '+00', to_char(hi, 'YYYY-MM-DD HH24:MI:SS') || '+00');
    RETURN part;
END
$$;

-- Partitions for every month that has history, and for this month and the
-- next three; the hub keeps preparing months ahead as time passes.
SELECT deployment_history_add_partition(m) FROM (
    SELECT DISTINCT date_trunc('month', changed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS m
    FROM deployment_history_unpartitioned
    UNION
    SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => n)) AT TIME ZONE 'UTC'
    FROM generate_series(0, 3) AS n
) AS months ORDER BY m;

-- Rows first, then the keys and indexes (on every partition): building an
-- index at once is faster than growing it row by row.
INSERT INTO deployment_history SELECT * FROM deployment_history_unpartitioned;
DROP TABLE deployment_history_unpartitioned;
ALTER TABLE deployment_history ADD PRIMARY KEY (id, changed_at);
ALTER TABLE deployment_history ADD FOREIGN KEY (deployment_id) REFERENCES deployments (id);
CREATE INDEX deployment_history_deployment ON deployment_history (deployment_id, changed_at);
CREATE INDEX deployment_history_time ON deployment_history (changed_at);

CREATE SEQUENCE deployment_history_id_seq OWNED BY deployment_history.id;
SELECT setval('deployment_history_id_seq', COALESCE((SELECT max(id) FROM deployment_history), 0) + 1, false);
ALTER TABLE deployment_history ALTER COLUMN id SET DEFAULT nextval('deployment_history_id_seq');
