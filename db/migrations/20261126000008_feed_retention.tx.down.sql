DROP INDEX IF EXISTS changes_occurred_at;
--bun:split
DROP TABLE IF EXISTS feed_horizon;
