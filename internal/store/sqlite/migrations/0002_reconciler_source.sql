-- source names what reports a reconciler (an Azure Resource Graph poller,
-- an agent...), so that a source can retire the reconcilers it reported
-- that have vanished. A reconciler registered before its first report has
-- no current deployment (commit_sha and status empty).
ALTER TABLE reconcilers ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX reconcilers_source ON reconcilers (source) WHERE source <> '' AND retired_at IS NULL;
