-- The earliest last-report time of each host's live reconcilers that have
-- reported: the host is stale once it is older than the stale time, so the
-- headline counts stale hosts from host_counts instead of reading every
-- reconciler that stopped reporting (all of them when a fleet goes
-- silent). Ingest recomputes it for the hosts whose reconcilers it
-- creates, retires or hears from after the heartbeat, through the index
-- below: the first of a host's live reconcilers by last-report time.
ALTER TABLE host_counts ADD COLUMN oldest_report_at INTEGER;

UPDATE host_counts SET oldest_report_at = (SELECT min(r.last_report_at) FROM reconcilers r
    WHERE r.host_id = host_counts.host_id AND r.retired_at IS NULL AND r.status <> '');

CREATE INDEX reconcilers_host_report ON reconcilers (host_id, last_report_at) WHERE retired_at IS NULL;
