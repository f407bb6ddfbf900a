-- The fork side of cross-instance merge requests (issue 14, docs/merge-requests.md).
-- mr_offered: a pull request in the forge of a local Repository actor (the fork) offered
-- to an upstream Repository actor on another instance, with the upstream's answer: the
-- merge-request Ticket it opened (Accept.result) and where it stands.
CREATE TABLE mr_offered (
    actor_id    TEXT    NOT NULL,
    number      BIGINT  NOT NULL,
    upstream_id TEXT    NOT NULL,
    offer_id    TEXT    NOT NULL UNIQUE,
    head        TEXT    NOT NULL,
    base        TEXT    NOT NULL,
    ticket_id   TEXT    NOT NULL DEFAULT '',
    state       TEXT    NOT NULL CHECK (state IN ('offered','accepted','rejected','merged','closed')),
    created     BIGINT  NOT NULL,
    updated     BIGINT  NOT NULL,
    PRIMARY KEY (actor_id, number, upstream_id)
);
CREATE INDEX mr_offered_ticket ON mr_offered (ticket_id) WHERE ticket_id <> '';
CREATE INDEX mr_offered_head ON mr_offered (actor_id, head);

-- mr_fork_notices: the fork notice (Create{Repository}) a local Repository actor sent to
-- its upstream, so that it is sent once, and again when the upstream changes. found is 1
-- when the upstream was found from the forge's record rather than declared in the spec.
CREATE TABLE mr_fork_notices (
    actor_id    TEXT    PRIMARY KEY,
    upstream_id TEXT    NOT NULL,
    activity_id TEXT    NOT NULL,
    sent        BIGINT  NOT NULL,
    found       INTEGER NOT NULL DEFAULT 0
);
