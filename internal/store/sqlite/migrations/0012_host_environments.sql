-- Maintained: the environments each host deploys to (a live reconciler of
-- the host applies an endpoint that a target of the environment has), with
-- the host's name order. Host State filtered by environment reads a page of
-- an environment's hosts in order from it, instead of walking every host
-- in name order until the page fills. host_order is the prefix that
-- hosts_name_order indexes, so the two orders agree.
CREATE TABLE host_environments (
    environment_id BIGINT NOT NULL,
    host_id        BIGINT NOT NULL,
    host_order     TEXT NOT NULL,
    PRIMARY KEY (environment_id, host_id)
);
CREATE INDEX host_environments_order ON host_environments (environment_id, host_order, host_id);
CREATE INDEX host_environments_host ON host_environments (host_id);

INSERT INTO host_environments (environment_id, host_id, host_order)
SELECT DISTINCT t.environment_id, r.host_id, substr(h.name, 1, 512)
FROM reconcilers r
JOIN hosts h ON h.id = r.host_id
JOIN targets t ON t.endpoint_id = r.endpoint_id
WHERE r.retired_at IS NULL;
