DROP INDEX IF EXISTS calendar_links_pending_due;
ALTER TABLE calendar_links DROP COLUMN IF EXISTS next_attempt_at, DROP COLUMN IF EXISTS attempts;
