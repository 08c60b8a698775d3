-- earliest_since bounds the status times of each group's live reconcilers
-- from below, as latest_since bounds their change times from above: a
-- filter by status time ("changed in the last hour") counts a group whose
-- bounds both pass as it is, skips one whose bounds both fail, and reads
-- the reconcilers of the groups in between alone. Ingest lowers it to the
-- status time of each reconciler it writes into the group. A group
-- without a live reconciler keeps 0, the epoch, below every status time.
ALTER TABLE endpoint_counts ADD COLUMN earliest_since INTEGER NOT NULL DEFAULT 0;

UPDATE endpoint_counts SET earliest_since = COALESCE((
    SELECT min(COALESCE(r.status_since, r.created_at)) FROM reconcilers r
    WHERE r.retired_at IS NULL AND r.endpoint_id = endpoint_counts.endpoint_id
      AND r.commit_sha = endpoint_counts.commit_sha AND r.status = endpoint_counts.status), 0);
