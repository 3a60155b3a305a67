-- The read model: every event of a linked mailbox that occupies time (single
-- events and the instances of series; never a series master), one row per
-- event link, kept in the same transactions that keep event_links and the
-- change feed. [starts_at, ends_at) are instants (all-day events from
-- midnight in their own zone); show_as is Outlook's free/busy status; long
-- marks events longer than a day (db.mirrorLookback).
--
-- A range question reads the btree (link, start) twice: events starting from
-- a day before the range (every event of a day or less that can overlap it),
-- and the few long ones starting earlier. Both are index-only scans; a GiST
-- index over a tstzrange of (link, span) measured 15 times slower for 500
-- links (BENCHMARKS.md, 8).
CREATE TABLE mirror_events (
    event_link_id bigint PRIMARY KEY REFERENCES event_links (id) ON DELETE CASCADE,
    link_id       bigint NOT NULL REFERENCES calendar_links (id) ON DELETE CASCADE,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    show_as       text NOT NULL,
    long          boolean NOT NULL
);
--bun:split
CREATE INDEX mirror_events_by_start ON mirror_events (link_id, starts_at) INCLUDE (ends_at, show_as);
--bun:split
CREATE INDEX mirror_events_long ON mirror_events (link_id, starts_at) INCLUDE (ends_at, show_as) WHERE long;
--bun:split
-- Fill the mirror of existing links: their next round is a full one (which
-- rebuilds a link's mirror), and it is due now.
UPDATE delta_state SET delta_link = NULL;
--bun:split
UPDATE calendar_links SET next_poll_at = now() WHERE provider <> 'NONE';
