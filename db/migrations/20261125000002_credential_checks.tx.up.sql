ALTER TABLE credentials ADD COLUMN checked_at timestamptz;
--bun:split
CREATE INDEX credentials_checked_at ON credentials (checked_at NULLS FIRST);
