-- The change feed keeps CALSYNC_FEED_RETENTION of changes. feed_horizon
-- remembers, per company, the newest cursor pruned: a cursor before it can
-- no longer be followed (CURSOR_EXPIRED).
CREATE TABLE feed_horizon (
    company_id     text PRIMARY KEY,
    pruned_through bigint NOT NULL
);
--bun:split
CREATE INDEX changes_occurred_at ON changes (occurred_at);
