-- Host State pages hosts in name order. Names have any length, so no index
-- holds them whole: this one orders hosts by a prefix, and the reports
-- order by (prefix, name), which is the same order.
CREATE INDEX hosts_name_order ON hosts (substr(name, 1, 512));
