-- Maintained: per host, how many of its live reconcilers have reported and
-- how many of those fail. The home page's headline counts hosts and
-- failing hosts from it instead of reading every reconciler. A host
-- without a reported live reconciler has no row.
CREATE TABLE host_counts (
    host_id   INTEGER PRIMARY KEY,
    reporting INTEGER NOT NULL,
    failing   INTEGER NOT NULL
);

INSERT INTO host_counts (host_id, reporting, failing)
SELECT host_id, sum(CASE WHEN status <> '' THEN 1 ELSE 0 END), sum(CASE WHEN status = 'failure' THEN 1 ELSE 0 END)
FROM reconcilers WHERE retired_at IS NULL
GROUP BY host_id HAVING sum(CASE WHEN status <> '' THEN 1 ELSE 0 END) > 0;
