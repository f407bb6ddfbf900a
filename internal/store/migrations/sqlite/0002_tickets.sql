-- Tickets (issue 13): the durable forge-write queue, the Tickets offered from the
-- Fediverse, their participants, and the map between forge comments and remote Notes.

-- state: 0 pending, 1 done, 2 dead. A leased row is pending with next_attempt pushed to
-- the lease expiry (as deliveries). key is the idempotency key: the id of the activity
-- that asked for the write. has_ref is set once the forge answered; a row with a ref is
-- never written again, only finished.
CREATE TABLE forge_writes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    key          TEXT    NOT NULL UNIQUE,
    actor_id     TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    payload      BLOB    NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0,
    attempt      INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    lease_owner  TEXT    NOT NULL DEFAULT '',
    last_error   TEXT    NOT NULL DEFAULT '',
    has_ref      INTEGER NOT NULL DEFAULT 0,
    ref_number   INTEGER NOT NULL DEFAULT 0,
    ref_id       INTEGER NOT NULL DEFAULT 0,
    ref_url      TEXT    NOT NULL DEFAULT '',
    created      INTEGER NOT NULL,
    finished     INTEGER
);
CREATE INDEX forge_writes_due ON forge_writes (next_attempt) WHERE state = 0;

CREATE TABLE tickets (
    id        TEXT    PRIMARY KEY,
    actor_id  TEXT    NOT NULL,
    number    INTEGER NOT NULL,
    author_id TEXT    NOT NULL DEFAULT '',
    offer_id  TEXT    NOT NULL DEFAULT '',
    object_id TEXT    NOT NULL DEFAULT '',
    created   INTEGER NOT NULL
);

CREATE TABLE ticket_participants (
    ticket_id    TEXT    NOT NULL,
    actor_id     TEXT    NOT NULL,
    inbox        TEXT    NOT NULL,
    shared_inbox TEXT    NOT NULL DEFAULT '',
    since        INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, actor_id)
);

-- comment_id is 0 until the forge answered the write of the comment; deleted is set once
-- the comment was deleted (the row stays, so the forge's deletion webhook is recognised).
CREATE TABLE ticket_comments (
    note_id    TEXT    PRIMARY KEY,
    ticket_id  TEXT    NOT NULL,
    comment_id INTEGER NOT NULL DEFAULT 0,
    author_id  TEXT    NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0,
    created    INTEGER NOT NULL
);
CREATE INDEX ticket_comments_forge ON ticket_comments (ticket_id, comment_id);
