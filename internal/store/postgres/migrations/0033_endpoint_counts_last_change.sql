-- latest_since now bounds the live reconcilers' change times: the last
-- change of each one's current deployment (status, message, or the return
-- to a commit it had left), else when it was registered. A change time is
-- never before the status time the column bounded so far, so a filter by
-- status time may still skip the groups whose bound is older; time travel
-- also counts the groups of an endpoint whose bounds are all before the
-- time as they are now, without reading each reconciler's history.
UPDATE endpoint_counts c SET latest_since = f.latest
FROM (SELECT r.endpoint_id, r.commit_sha, r.status, max(COALESCE(d.last_changed, r.created_at)) AS latest
      FROM reconcilers r LEFT JOIN deployments d ON d.id = r.current_deployment_id
      WHERE r.retired_at IS NULL GROUP BY r.endpoint_id, r.commit_sha, r.status) f
WHERE f.endpoint_id = c.endpoint_id AND f.commit_sha = c.commit_sha AND f.status = c.status
  AND f.latest > c.latest_since;
