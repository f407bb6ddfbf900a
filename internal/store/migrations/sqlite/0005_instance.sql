-- The one server (spec.host) this database belongs to, claimed by the first server that
-- opens it: two FederationServers must never share a database (their activities, keys'
-- ids and queues would mix), so a server with another host is refused (store.ClaimHost).
CREATE TABLE instance (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    host    TEXT    NOT NULL,
    claimed INTEGER NOT NULL
);
