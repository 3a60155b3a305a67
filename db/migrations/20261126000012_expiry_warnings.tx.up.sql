-- Warnings ahead of a client secret's expiry, sent to the host once per
-- (company, expiry, threshold): whoever inserts the row sends the event,
-- so several replicas and restarts still send each exactly once.
CREATE TABLE secret_expiry_warnings (
    company_id     text NOT NULL,
    expires_at     timestamptz NOT NULL,
    threshold_days integer NOT NULL,
    sent_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, expires_at, threshold_days)
);
--bun:split
-- Events for the host webhook other than the change feed (credentials.expiring),
-- delivered in order after the feed's changes.
CREATE TABLE host_events (
    seq         bigserial PRIMARY KEY,
    type        text NOT NULL,
    company_id  text NOT NULL,
    data        jsonb NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
--bun:split
ALTER TABLE host_webhook_state ADD COLUMN last_event_seq bigint NOT NULL DEFAULT 0;
