-- Reconcilers registered before their first report count as hosts of
-- their target ("not reported"): the index Environment State reads covers
-- every live reconciler, reported or not.
DROP INDEX reconcilers_state;
CREATE INDEX reconcilers_state ON reconcilers (endpoint_id, commit_sha, status) WHERE retired_at IS NULL;
