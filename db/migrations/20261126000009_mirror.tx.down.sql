-- btree_gist stays: other objects in the database may use it.
DROP TABLE IF EXISTS mirror_events;
