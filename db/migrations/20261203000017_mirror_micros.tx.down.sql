DROP INDEX mirror_events_by_start;
DROP INDEX mirror_events_long;
ALTER TABLE mirror_events DROP COLUMN starts_us, DROP COLUMN ends_us;
CREATE INDEX mirror_events_by_start ON mirror_events (link_id, starts_at) INCLUDE (ends_at, show_as);
CREATE INDEX mirror_events_long ON mirror_events (link_id, starts_at) INCLUDE (ends_at, show_as) WHERE long;
