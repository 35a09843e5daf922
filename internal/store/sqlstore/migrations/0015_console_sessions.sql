-- Console log-in (issue 12): an account's password, as a bcrypt hash ('' =
-- no password: the account logs in with an API token only), and the
-- sessions of the web console, each known by the SHA-256 of its secret.
ALTER TABLE accounts ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';

CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    role       TEXT NOT NULL,
    token_id   TEXT NOT NULL DEFAULT '',
    created    TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    expires    TEXT NOT NULL
);
CREATE INDEX sessions_expires ON sessions(expires);
