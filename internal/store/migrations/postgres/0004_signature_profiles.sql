-- Signature profile per peer host (issue 19): how requests to the host are signed
-- (cavage, rfc9421-rsa, rfc9421-ed25519), where that was learnt (pinned, knock,
-- accept-signature, inbound, nodeinfo), the peer's NodeInfo software when known, and
-- when (microseconds, UTC). A pinned row is replaced only by another pin or removed.
CREATE TABLE signature_profiles (
    host       TEXT   PRIMARY KEY,
    profile    TEXT   NOT NULL CHECK (profile IN ('cavage','rfc9421-rsa','rfc9421-ed25519')),
    source     TEXT   NOT NULL,
    software   TEXT   NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL
);
