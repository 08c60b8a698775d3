-- latest_since bounds from above the status times of the live reconcilers
-- a group counts (a reconciler's status time: when its status last
-- changed, else when it was registered). Ingest raises it to the time of
-- each reconciler that joins the group and never lowers it. A report
-- filtered by time ("changed in the last hour") reads the reconcilers of
-- the groups whose bound passes the filter, instead of every reconciler
-- of every target. 0: a group without a live reconciler.
ALTER TABLE endpoint_counts ADD COLUMN latest_since INTEGER NOT NULL DEFAULT 0;

UPDATE endpoint_counts SET latest_since = COALESCE((
    SELECT max(COALESCE(r.status_since, r.created_at)) FROM reconcilers r
    WHERE r.retired_at IS NULL AND r.endpoint_id = endpoint_counts.endpoint_id
      AND r.commit_sha = endpoint_counts.commit_sha AND r.status = endpoint_counts.status), 0);
