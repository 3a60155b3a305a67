CREATE TABLE host_webhook_state (
    id               integer PRIMARY KEY CHECK (id = 1),
    last_cursor      bigint NOT NULL,
    failures         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
