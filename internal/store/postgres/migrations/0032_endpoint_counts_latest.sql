-- latest_since bounds from above the status times of the live reconcilers
-- a group counts (a reconciler's status time: when its status last
-- changed, else when it was registered). Ingest raises it to the time of
-- each reconciler that joins the group and never lowers it, so concurrent
-- writers need no order. A report filtered by time ("changed in the last
-- hour") reads the reconcilers of the groups whose bound passes the
-- filter, instead of every reconciler of every target.
ALTER TABLE endpoint_counts ADD COLUMN latest_since TIMESTAMPTZ;

UPDATE endpoint_counts c SET latest_since = f.latest
FROM (SELECT endpoint_id, commit_sha, status, max(COALESCE(status_since, created_at)) AS latest
      FROM reconcilers WHERE retired_at IS NULL GROUP BY endpoint_id, commit_sha, status) f
WHERE f.endpoint_id = c.endpoint_id AND f.commit_sha = c.commit_sha AND f.status = c.status;

-- A group without a live reconciler has nothing to bound.
UPDATE endpoint_counts SET latest_since = to_timestamp(0) WHERE latest_since IS NULL;

ALTER TABLE endpoint_counts ALTER COLUMN latest_since SET NOT NULL;
