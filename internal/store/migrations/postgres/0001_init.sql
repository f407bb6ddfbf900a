-- Fedforge store, PostgreSQL engine. Times are BIGINT microseconds since the Unix epoch
-- (UTC), identical in both engines, exact and index-friendly. Booleans are BOOLEAN.

CREATE TABLE activities (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    actor_id   TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    object_id  TEXT    NOT NULL DEFAULT '',
    visibility TEXT    NOT NULL CHECK (visibility IN ('public','unlisted','followers','direct')),
    published  BIGINT NOT NULL,
    raw        BYTEA    NOT NULL
);
-- Keyset pagination of one actor's outbox, newest first.
CREATE INDEX activities_outbox ON activities (actor_id, published DESC, seq DESC);

CREATE TABLE objects (
    id         TEXT    PRIMARY KEY,
    actor_id   TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    visibility TEXT    NOT NULL CHECK (visibility IN ('public','unlisted','followers','direct')),
    published  BIGINT NOT NULL,
    updated    BIGINT NOT NULL,
    raw        BYTEA    NOT NULL
);

-- O(1) totalItems: one counter per (actor, visibility), updated with each append.
CREATE TABLE outbox_counts (
    actor_id   TEXT    NOT NULL,
    visibility TEXT    NOT NULL,
    n          BIGINT NOT NULL,
    PRIMARY KEY (actor_id, visibility)
);

CREATE TABLE received (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id        TEXT    NOT NULL UNIQUE,
    actor_id  TEXT    NOT NULL,
    type      TEXT    NOT NULL,
    received  BIGINT NOT NULL,
    raw       BYTEA    NOT NULL
);

CREATE TABLE received_recipients (
    local_actor_id TEXT    NOT NULL,
    received_seq   BIGINT NOT NULL REFERENCES received (seq) ON DELETE CASCADE,
    PRIMARY KEY (local_actor_id, received_seq)
);

CREATE TABLE remote_actors (
    id           TEXT    PRIMARY KEY,
    inbox        TEXT    NOT NULL DEFAULT '',
    shared_inbox TEXT    NOT NULL DEFAULT '',
    raw          BYTEA,
    fetched      BIGINT NOT NULL,
    expires      BIGINT NOT NULL,
    negative     BOOLEAN NOT NULL DEFAULT false,
    error        TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE remote_keys (
    key_id   TEXT PRIMARY KEY,
    actor_id TEXT NOT NULL REFERENCES remote_actors (id) ON DELETE CASCADE,
    pem      TEXT NOT NULL
);
CREATE INDEX remote_keys_actor ON remote_keys (actor_id);

-- state: 0 pending, 1 delivered, 2 dead. A leased row is pending with next_attempt
-- pushed to the lease expiry, so an expired lease is simply due again.
CREATE TABLE deliveries (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    activity_id  TEXT    NOT NULL REFERENCES activities (id),
    actor_id     TEXT    NOT NULL,
    inbox        TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    state        SMALLINT NOT NULL DEFAULT 0,
    attempt      INTEGER NOT NULL DEFAULT 0,
    next_attempt BIGINT NOT NULL,
    lease_owner  TEXT    NOT NULL DEFAULT '',
    last_error   TEXT    NOT NULL DEFAULT '',
    created      BIGINT NOT NULL,
    finished     BIGINT,
    UNIQUE (activity_id, inbox)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt) WHERE state = 0;
CREATE INDEX deliveries_finished ON deliveries (finished) WHERE state <> 0;

CREATE TABLE hosts (
    host                 TEXT    PRIMARY KEY,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    failure_days         BIGINT NOT NULL DEFAULT 0,
    last_failure_day     BIGINT NOT NULL DEFAULT -1,
    unavailable          BOOLEAN NOT NULL DEFAULT false,
    last_success         BIGINT NOT NULL DEFAULT 0,
    last_failure         BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE feed_state (
    source_id     TEXT    PRIMARY KEY,
    etag          TEXT    NOT NULL DEFAULT '',
    last_modified TEXT    NOT NULL DEFAULT '',
    polled        BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE feed_entries (
    source_id TEXT    NOT NULL,
    entry_id  TEXT    NOT NULL,
    seen      BIGINT NOT NULL,
    PRIMARY KEY (source_id, entry_id)
);
