DROP TABLE IF EXISTS mirror_events;
