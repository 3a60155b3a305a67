DROP INDEX IF EXISTS credentials_checked_at;
--bun:split
ALTER TABLE credentials DROP COLUMN IF EXISTS checked_at;
