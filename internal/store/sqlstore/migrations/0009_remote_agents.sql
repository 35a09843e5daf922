-- Remote agents (issue 6): the installation's CA, shared by every server on
-- the database; one-time join tokens (hash only); each host's agent identity
-- (certificate serial, revocation), the URL its agent serves on and whether
-- the server reaches it.
CREATE TABLE pki_ca (
    id       TEXT PRIMARY KEY,
    cert_pem TEXT NOT NULL,
    key_pem  TEXT NOT NULL,
    created  TEXT NOT NULL
);

CREATE TABLE join_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL,
    zone_id    TEXT NOT NULL REFERENCES zones(id),
    created    TEXT NOT NULL,
    expires    TEXT NOT NULL,
    used       TEXT NOT NULL DEFAULT '',
    used_by    TEXT NOT NULL DEFAULT '',
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE host_agents (
    host_id     TEXT PRIMARY KEY REFERENCES hosts(id),
    agent_url   TEXT NOT NULL DEFAULT '',
    cert_serial TEXT NOT NULL DEFAULT '',
    revoked     BOOLEAN NOT NULL DEFAULT FALSE,
    connection  TEXT NOT NULL DEFAULT '',
    since       TEXT NOT NULL DEFAULT ''
);
