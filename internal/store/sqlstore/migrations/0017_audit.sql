-- The audit log (issue 14): one row per state-changing API call, refused
-- ones included. Lists read it newest first, by time or by account;
-- retention deletes by time.
CREATE TABLE audit_log (
    id           TEXT PRIMARY KEY,
    at           TEXT NOT NULL,
    account_id   TEXT NOT NULL DEFAULT '',
    account      TEXT NOT NULL DEFAULT '',
    token_id     TEXT NOT NULL DEFAULT '',
    source       TEXT NOT NULL DEFAULT '',
    action       TEXT NOT NULL,
    object       TEXT NOT NULL DEFAULT '',
    status       INTEGER NOT NULL,
    error        TEXT NOT NULL DEFAULT '',
    operation_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log(at, id);
CREATE INDEX audit_log_account_id ON audit_log(account_id, at, id);
CREATE INDEX audit_log_account ON audit_log(account, at, id);
