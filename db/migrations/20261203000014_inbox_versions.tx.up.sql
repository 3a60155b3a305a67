-- The event and version (changeKey, from resourceData's @odata.etag) a
-- change notification names, when it names them: a notification for a
-- version calsync already knows (the echo of its own write, or a
-- redelivery) needs no delta round.
ALTER TABLE inbox ADD COLUMN event_id text, ADD COLUMN change_key text;
