-- credentials: one row per company; the client secret only ever sealed.
CREATE TABLE credentials (
    company_id        text PRIMARY KEY,
    tenant_id         text NOT NULL,
    client_id         text NOT NULL,
    secret_sealed     bytea NOT NULL,
    secret_key_id     text NOT NULL,
    secret_hint       text NOT NULL,
    status            text NOT NULL,
    granted_roles     text[] NOT NULL DEFAULT '{}',
    last_error        text,
    verified_at       timestamptz,
    registered_by     text NOT NULL,
    registered_at     timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
--bun:split
CREATE TABLE calendar_links (
    id                bigserial PRIMARY KEY,
    company_id        text NOT NULL,
    user_id           text NOT NULL,
    provider          text NOT NULL,
    calendar_id       text,
    graph_user_id     text,
    status            text NOT NULL,
    last_error        text,
    last_synced_at    timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (company_id, user_id)
);
--bun:split
CREATE INDEX calendar_links_company_status ON calendar_links (company_id, status, id);
--bun:split
CREATE TABLE graph_subscriptions (
    id                text PRIMARY KEY,
    link_id           bigint NOT NULL REFERENCES calendar_links (id) ON DELETE CASCADE,
    company_id        text NOT NULL,
    resource          text NOT NULL,
    expires_at        timestamptz NOT NULL,
    renew_at          timestamptz NOT NULL,
    client_state      text NOT NULL,
    renewal_failures  integer NOT NULL DEFAULT 0,
    status            text NOT NULL,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
--bun:split
CREATE INDEX graph_subscriptions_renew_at ON graph_subscriptions (renew_at) WHERE status = 'active';
--bun:split
CREATE INDEX graph_subscriptions_link ON graph_subscriptions (link_id);
--bun:split
CREATE TABLE event_links (
    id                 bigserial PRIMARY KEY,
    company_id         text NOT NULL,
    user_id            text NOT NULL,
    link_id            bigint REFERENCES calendar_links (id) ON DELETE SET NULL,
    external_id        text,
    outlook_event_id   text NOT NULL,
    ical_uid           text,
    written_change_key text,
    known_change_key   text,
    last_known         jsonb,
    deleted            boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
--bun:split
CREATE UNIQUE INDEX event_links_external ON event_links (company_id, external_id) WHERE external_id IS NOT NULL;
--bun:split
CREATE UNIQUE INDEX event_links_outlook ON event_links (company_id, user_id, outlook_event_id);
--bun:split
CREATE TABLE delta_state (
    link_id           bigint PRIMARY KEY REFERENCES calendar_links (id) ON DELETE CASCADE,
    delta_link        text,
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
--bun:split
CREATE TABLE inbox (
    id                bigserial PRIMARY KEY,
    kind              text NOT NULL,
    subscription_id   text NOT NULL,
    link_id           bigint,
    change_type       text,
    lifecycle_event   text,
    resource          text,
    received_at       timestamptz NOT NULL DEFAULT now(),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    processed_at      timestamptz,
    last_error        text
);
--bun:split
CREATE INDEX inbox_pending ON inbox (next_attempt_at, id) WHERE processed_at IS NULL;
--bun:split
CREATE TABLE changes (
    cursor            bigserial PRIMARY KEY,
    company_id        text NOT NULL,
    user_id           text NOT NULL,
    link_id           bigint,
    external_id       text,
    outlook_event_id  text NOT NULL,
    change_type       text NOT NULL,
    changed_fields    text[] NOT NULL DEFAULT '{}',
    event             jsonb,
    occurred_at       timestamptz NOT NULL DEFAULT now()
);
--bun:split
CREATE INDEX changes_company_user ON changes (company_id, user_id, cursor);
--bun:split
CREATE TABLE audit_log (
    id                bigserial PRIMARY KEY,
    company_id        text NOT NULL,
    actor             text NOT NULL,
    action            text NOT NULL,
    detail            jsonb NOT NULL DEFAULT '{}',
    at                timestamptz NOT NULL DEFAULT now()
);
--bun:split
CREATE INDEX audit_log_company ON audit_log (company_id, at);
