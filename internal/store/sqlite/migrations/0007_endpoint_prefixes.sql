-- A new endpoint in joined form looks its branch up among the prefixes of
-- its key, and a new branch finds the joined endpoints under it, each by
-- index instead of reading every endpoint (a fleet has thousands).
CREATE INDEX endpoints_branch_prefix ON endpoints (branch_prefix) WHERE branch_prefix <> '';
CREATE INDEX endpoints_joined_order ON endpoints (substr(key, 1, 512)) WHERE joined;
