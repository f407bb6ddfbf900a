-- Merge requests offered from the Fediverse (issue 14, upstream side): one row per pull
-- request Fedforge opened in the forge from a federated branch, so that a ForgeFed Push
-- from the origin Repository actor finds the branch to update. id is the Ticket
-- (<actor>/merge-requests/<n>); head is the commit last mirrored into the federated
-- branch (a force-push of the origin replaces the branch only while it is still there);
-- closed is set once the pull request was found closed or merged.
CREATE TABLE federated_merge_requests (
    id            TEXT    PRIMARY KEY,
    actor_id      TEXT    NOT NULL,
    number        BIGINT  NOT NULL,
    offer_id      TEXT    NOT NULL,
    origin_actor  TEXT    NOT NULL,
    origin_ref    TEXT    NOT NULL,
    clone_url     TEXT    NOT NULL,
    branch        TEXT    NOT NULL,
    target_branch TEXT    NOT NULL,
    head          TEXT    NOT NULL DEFAULT '',
    closed        BIGINT  NOT NULL DEFAULT 0,
    created       BIGINT  NOT NULL,
    updated       BIGINT  NOT NULL
);
CREATE INDEX federated_merge_requests_origin ON federated_merge_requests (origin_actor, origin_ref);
