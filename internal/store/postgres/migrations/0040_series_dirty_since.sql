-- The time from which a marked endpoint's series is to be recomputed: a
-- late report moves what the history says from its own time on, so the
-- snapshots before it stay and are still read. NULL: the whole series (a
-- move to another endpoint, retention, an upgrade).
ALTER TABLE series_dirty ADD COLUMN since TIMESTAMPTZ;
