-- The ForgeFed surface of Repository actors: the forks collection and the likes
-- (stars) collection. seq orders each collection newest first and keys its pages.

CREATE TABLE repo_forks (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id    TEXT    NOT NULL,
    fork_id     TEXT    NOT NULL,
    via         TEXT    NOT NULL CHECK (via IN ('forge','federation')),
    activity_id TEXT    NOT NULL DEFAULT '',
    created     BIGINT NOT NULL,
    UNIQUE (actor_id, fork_id)
);
CREATE INDEX repo_forks_page ON repo_forks (actor_id, seq DESC);

CREATE TABLE repo_likes (
    seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id TEXT    NOT NULL,
    liker_id TEXT    NOT NULL,
    like_id  TEXT    NOT NULL DEFAULT '',
    via      TEXT    NOT NULL CHECK (via IN ('forge','federation')),
    created  BIGINT NOT NULL,
    UNIQUE (actor_id, liker_id)
);
CREATE INDEX repo_likes_page ON repo_likes (actor_id, seq DESC);
CREATE INDEX repo_likes_like ON repo_likes (like_id) WHERE like_id <> '';
