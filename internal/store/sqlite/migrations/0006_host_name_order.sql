-- Host State pages hosts in name order by (prefix, name), as on
-- PostgreSQL, where no index can hold names of any length whole.
CREATE INDEX hosts_name_order ON hosts (substr(name, 1, 512));
