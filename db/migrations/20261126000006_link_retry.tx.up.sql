-- A link whose mailbox is not ready yet (a new hire's mailbox still being
-- provisioned) stays PENDING and is tried again on a backoff: when the
-- next attempt is due, and how many were made.
ALTER TABLE calendar_links
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0;
CREATE INDEX calendar_links_pending_due ON calendar_links (next_attempt_at)
    WHERE status IN ('PENDING', 'POLLING') AND next_attempt_at IS NOT NULL;
