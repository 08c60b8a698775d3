-- earliest_since bounds the status times of each group's live reconcilers
-- from below, as latest_since bounds their change times from above: a
-- filter by status time ("changed in the last hour") counts a group whose
-- bounds both pass as it is, skips one whose bounds both fail, and reads
-- the reconcilers of the groups in between alone. Ingest lowers it to the
-- status time of each reconciler it writes into the group.
ALTER TABLE endpoint_counts ADD COLUMN earliest_since TIMESTAMPTZ;

UPDATE endpoint_counts c SET earliest_since = f.earliest
FROM (SELECT endpoint_id, commit_sha, status, min(COALESCE(status_since, created_at)) AS earliest
      FROM reconcilers WHERE retired_at IS NULL GROUP BY endpoint_id, commit_sha, status) f
WHERE f.endpoint_id = c.endpoint_id AND f.commit_sha = c.commit_sha AND f.status = c.status;

-- A group without a live reconciler (none, when the counts are right)
-- bounds nothing: the epoch is below every status time.
UPDATE endpoint_counts SET earliest_since = to_timestamp(0) WHERE earliest_since IS NULL;

ALTER TABLE endpoint_counts ALTER COLUMN earliest_since SET NOT NULL;
