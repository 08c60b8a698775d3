-- Each resolution carries the version of its assignment (an assignment's
-- version never changes), so that a report or the drift classification
-- resolves a host's commit to its version in one probe instead of two.
-- NULL with assignment_id: unknown version.
ALTER TABLE resolutions ADD COLUMN version_id BIGINT REFERENCES workload_versions (id);
UPDATE resolutions r SET version_id = a.version_id FROM assignments a WHERE a.id = r.assignment_id;
