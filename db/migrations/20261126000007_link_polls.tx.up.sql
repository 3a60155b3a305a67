-- Every linked calendar gets a delta round at least every
-- CALSYNC_RESYNC_INTERVAL, notifications or not: next_poll_at is when the
-- next one is due (pushed forward by every round, so a link that synced
-- recently is not polled). POLLING links have no Graph subscription and
-- rely on these rounds while the subscription is retried.
ALTER TABLE calendar_links ADD COLUMN next_poll_at timestamptz;
CREATE INDEX calendar_links_poll_due ON calendar_links (next_poll_at)
    WHERE provider <> 'NONE' AND status IN ('ACTIVE', 'POLLING');
