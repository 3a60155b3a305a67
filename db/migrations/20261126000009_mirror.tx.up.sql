-- The read model: every event of a linked mailbox that occupies time (single
-- events and the instances of series; never a series master), one row per
-- event link, kept in the same transactions that keep event_links and the
-- change feed. span is [start, end) as instants (all-day events from
-- midnight in their own zone); show_as is Outlook's free/busy status.
-- btree_gist lets one GiST index serve "this link's events overlapping that
-- range" (a trusted contrib extension: the database owner may create it).
CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public;
--bun:split
CREATE TABLE mirror_events (
    event_link_id bigint PRIMARY KEY REFERENCES event_links (id) ON DELETE CASCADE,
    link_id       bigint NOT NULL REFERENCES calendar_links (id) ON DELETE CASCADE,
    span          tstzrange NOT NULL,
    show_as       text NOT NULL
);
--bun:split
CREATE INDEX mirror_events_span ON mirror_events USING gist (link_id, span);
--bun:split
-- Fill the mirror of existing links: their next round is a full one (which
-- rebuilds a link's mirror), and it is due now.
UPDATE delta_state SET delta_link = NULL;
--bun:split
UPDATE calendar_links SET next_poll_at = now() WHERE provider <> 'NONE';
