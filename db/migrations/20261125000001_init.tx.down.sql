DROP TABLE IF EXISTS audit_log;
--bun:split
DROP TABLE IF EXISTS changes;
--bun:split
DROP TABLE IF EXISTS inbox;
--bun:split
DROP TABLE IF EXISTS delta_state;
--bun:split
DROP TABLE IF EXISTS event_links;
--bun:split
DROP TABLE IF EXISTS graph_subscriptions;
--bun:split
DROP TABLE IF EXISTS calendar_links;
--bun:split
DROP TABLE IF EXISTS credentials;
