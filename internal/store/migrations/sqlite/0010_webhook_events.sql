-- The webhook queue (docs/sources.md): a forge's webhook is answered once its
-- authenticated event is a row here, and a worker renders and publishes it afterwards.
-- state: 0 pending, 1 done, 2 dead. A leased row is pending with next_attempt pushed to
-- the lease expiry (as deliveries and forge_writes). username and source (the webhook's
-- path) make a lane: only the oldest pending row of a lane is ever leased, so one
-- source's events run in arrival (id) order. delivery_key is the lane and the forge's
-- delivery id, NULL when the forge sent none: a redelivery adds no second row.
CREATE TABLE webhook_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_key TEXT    UNIQUE,
    username     TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    actor        TEXT    NOT NULL DEFAULT '',
    forge        TEXT    NOT NULL DEFAULT '',
    payload      BLOB    NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0,
    attempt      INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    lease_owner  TEXT    NOT NULL DEFAULT '',
    last_error   TEXT    NOT NULL DEFAULT '',
    received     INTEGER NOT NULL,
    finished     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_events_due ON webhook_events (next_attempt) WHERE state = 0;
CREATE INDEX webhook_events_lane ON webhook_events (username, source, id) WHERE state = 0;
CREATE INDEX webhook_events_finished ON webhook_events (finished) WHERE state <> 0;
