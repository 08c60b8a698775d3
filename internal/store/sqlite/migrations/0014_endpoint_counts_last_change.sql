-- latest_since now bounds the live reconcilers' change times: the last
-- change of each one's current deployment (status, message, or the return
-- to a commit it had left), else when it was registered. A change time is
-- never before the status time the column bounded so far, so a filter by
-- status time may still skip the groups whose bound is older; time travel
-- also counts the groups of an endpoint whose bounds are all before the
-- time as they are now, without reading each reconciler's history.
UPDATE endpoint_counts SET latest_since = max(latest_since, COALESCE((
    SELECT max(COALESCE(d.last_changed, r.created_at)) FROM reconcilers r
    LEFT JOIN deployments d ON d.id = r.current_deployment_id
    WHERE r.retired_at IS NULL AND r.endpoint_id = endpoint_counts.endpoint_id
      AND r.commit_sha = endpoint_counts.commit_sha AND r.status = endpoint_counts.status), 0));
