DROP INDEX IF EXISTS calendar_links_poll_due;
ALTER TABLE calendar_links DROP COLUMN IF EXISTS next_poll_at;
