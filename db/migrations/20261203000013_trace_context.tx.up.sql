-- The W3C traceparent of the span that made each row (NULL with tracing
-- off), so one trace follows a change across the inbox and the feed: the
-- notification POST that stored an inbox row is the parent of the delta
-- round that processes it, and that round's feed append is the parent of
-- the websocket send and the host webhook POST.
ALTER TABLE inbox ADD COLUMN traceparent text;
--bun:split
ALTER TABLE changes ADD COLUMN traceparent text;
