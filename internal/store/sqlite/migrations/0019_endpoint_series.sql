-- Each endpoint's live reconcilers by commit and status, kept by time, so
-- that time travel reads one row per endpoint instead of the history of
-- every reconciler that changed since: a snapshot at each time the counts
-- change (groups: a JSON array of [commit, status, hosts], sorted). Ingest
-- appends (and, for a report older than snapshots another writer added,
-- adjusts) them in the report's transaction.
CREATE TABLE endpoint_snapshots (
    endpoint_id INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    groups      TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, at)
) WITHOUT ROWID;

-- Endpoints whose snapshots are not to be read until a background pass
-- recomputes them from the history: a late report, a reconciler retired,
-- restored or moved, history pruned by retention. gen counts the marks,
-- so that a pass forgets only the mark it answered.
CREATE TABLE series_dirty (
    endpoint_id INTEGER PRIMARY KEY,
    gen         INTEGER NOT NULL DEFAULT 1
);

-- Every endpoint that exists now: its snapshots are built from the
-- history by the hub, in the background.
INSERT INTO series_dirty (endpoint_id) SELECT id FROM endpoints;
