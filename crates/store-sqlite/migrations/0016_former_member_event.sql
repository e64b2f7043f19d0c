-- A former member's details (the membership as it was, what the cascade deleted, who removed
-- it and why) are those of its removal's `membership.removed` event, written in the same
-- transaction: a record names that event instead of keeping a copy. Each removal wrote its
-- details twice, about 800 bytes more a removal, which cost SQLite 7-14% of its removals/s
-- (docs/benchmarks.md). An event a record names is kept as long as the record. Records
-- written before keep their own copy (`event_id` null).

ALTER TABLE former_members ADD COLUMN event_id BLOB NULL;
