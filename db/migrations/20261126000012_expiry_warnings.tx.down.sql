ALTER TABLE host_webhook_state DROP COLUMN IF EXISTS last_event_seq;
--bun:split
DROP TABLE IF EXISTS host_events;
--bun:split
DROP TABLE IF EXISTS secret_expiry_warnings;
