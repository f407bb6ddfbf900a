-- Fedforge store, SQLite engine. Times are INTEGER microseconds since the Unix epoch
-- (UTC), identical in both engines, exact and index-friendly.

CREATE TABLE activities (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    actor_id   TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    object_id  TEXT    NOT NULL DEFAULT '',
    visibility TEXT    NOT NULL CHECK (visibility IN ('public','unlisted','followers','direct')),
    published  INTEGER NOT NULL,
    raw        BLOB    NOT NULL
);
-- Keyset pagination of one actor's outbox, newest first.
CREATE INDEX activities_outbox ON activities (actor_id, published DESC, seq DESC);

CREATE TABLE objects (
    id         TEXT    PRIMARY KEY,
    actor_id   TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    visibility TEXT    NOT NULL CHECK (visibility IN ('public','unlisted','followers','direct')),
    published  INTEGER NOT NULL,
    updated    INTEGER NOT NULL,
    raw        BLOB    NOT NULL
);

-- O(1) totalItems: one counter per (actor, visibility), updated with each append.
CREATE TABLE outbox_counts (
    actor_id   TEXT    NOT NULL,
    visibility TEXT    NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (actor_id, visibility)
);

CREATE TABLE received (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    id        TEXT    NOT NULL UNIQUE,
    actor_id  TEXT    NOT NULL,
    type      TEXT    NOT NULL,
    received  INTEGER NOT NULL,
    raw       BLOB    NOT NULL
);

CREATE TABLE received_recipients (
    local_actor_id TEXT    NOT NULL,
    received_seq   INTEGER NOT NULL REFERENCES received (seq) ON DELETE CASCADE,
    PRIMARY KEY (local_actor_id, received_seq)
);

CREATE TABLE remote_actors (
    id           TEXT    PRIMARY KEY,
    inbox        TEXT    NOT NULL DEFAULT '',
    shared_inbox TEXT    NOT NULL DEFAULT '',
    raw          BLOB,
    fetched      INTEGER NOT NULL,
    expires      INTEGER NOT NULL,
    negative     INTEGER NOT NULL DEFAULT 0,
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
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    activity_id  TEXT    NOT NULL REFERENCES activities (id),
    actor_id     TEXT    NOT NULL,
    inbox        TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0,
    attempt      INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    lease_owner  TEXT    NOT NULL DEFAULT '',
    last_error   TEXT    NOT NULL DEFAULT '',
    created      INTEGER NOT NULL,
    finished     INTEGER,
    UNIQUE (activity_id, inbox)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt) WHERE state = 0;
CREATE INDEX deliveries_finished ON deliveries (finished) WHERE state <> 0;

CREATE TABLE hosts (
    host                 TEXT    PRIMARY KEY,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failure_days         INTEGER NOT NULL DEFAULT 0,
    last_failure_day     INTEGER NOT NULL DEFAULT -1,
    unavailable          INTEGER NOT NULL DEFAULT 0,
    last_success         INTEGER NOT NULL DEFAULT 0,
    last_failure         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE feed_state (
    source_id     TEXT    PRIMARY KEY,
    etag          TEXT    NOT NULL DEFAULT '',
    last_modified TEXT    NOT NULL DEFAULT '',
    polled        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE feed_entries (
    source_id TEXT    NOT NULL,
    entry_id  TEXT    NOT NULL,
    seen      INTEGER NOT NULL,
    PRIMARY KEY (source_id, entry_id)
);
