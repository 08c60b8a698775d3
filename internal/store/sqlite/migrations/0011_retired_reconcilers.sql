-- Time travel reads the reconcilers of a page of targets that were live at
-- a past time: the live ones by reconcilers_endpoint, the ones retired
-- since by this index (retired reconcilers are few; without it each page
-- read every reconciler).
CREATE INDEX reconcilers_retired_endpoint ON reconcilers (endpoint_id, retired_at) WHERE retired_at IS NOT NULL;
