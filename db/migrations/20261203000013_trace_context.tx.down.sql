ALTER TABLE changes DROP COLUMN traceparent;
--bun:split
ALTER TABLE inbox DROP COLUMN traceparent;
