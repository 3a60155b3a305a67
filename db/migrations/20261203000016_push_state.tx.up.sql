-- Locks a push's entry keys (calsync_lock_keys) and then reads what the
-- push needs — the user's link, the company's credentials and the entry's
-- event link — in one round trip. The read is a statement of its own, run
-- after the locks are held: a VOLATILE function takes a fresh snapshot for
-- each statement, so it sees what the previous holder of the keys
-- committed (a single statement would read under the snapshot it took
-- before it waited).
CREATE FUNCTION calsync_lock_push_state(keys bigint[], company text, usr text, ext text)
RETURNS TABLE (link_row calendar_links, cred_row credentials, event_row event_links)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM calsync_lock_keys(keys);
    RETURN QUERY
        SELECT lk, cr, ev
        FROM (SELECT 1) AS one
        LEFT JOIN calendar_links AS lk ON lk.company_id = company AND lk.user_id = usr
        LEFT JOIN credentials AS cr ON cr.company_id = company
        LEFT JOIN event_links AS ev ON ev.company_id = company AND ev.external_id = ext;
END
$$;
