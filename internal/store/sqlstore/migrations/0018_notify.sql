-- Notifications (issue 14): targets (a webhook or an SMTP server; secret
-- is the webhook's HMAC key or the SMTP password, never listed), rules
-- choosing which events of which zone and account go to a target, the
-- conditions the evaluator found (one row per key: fired once and resolved
-- once per episode, with conditional writes so that of several servers one
-- acts) and the outbox of deliveries the sender retries with backoff.
CREATE TABLE notify_targets (
    id        TEXT PRIMARY KEY,
    name      TEXT NOT NULL UNIQUE,
    kind      TEXT NOT NULL,
    url       TEXT NOT NULL DEFAULT '',
    secret    TEXT NOT NULL DEFAULT '',
    addr      TEXT NOT NULL DEFAULT '',
    mail_from TEXT NOT NULL DEFAULT '',
    mail_to   TEXT NOT NULL DEFAULT '',
    username  TEXT NOT NULL DEFAULT '',
    starttls  TEXT NOT NULL DEFAULT 'required',
    created   TEXT NOT NULL
);

CREATE TABLE notify_rules (
    id         TEXT PRIMARY KEY,
    target_id  TEXT NOT NULL REFERENCES notify_targets(id) ON DELETE CASCADE,
    events     TEXT NOT NULL DEFAULT '',
    zone_id    TEXT NOT NULL DEFAULT '',
    account_id TEXT NOT NULL DEFAULT '',
    digest     BOOLEAN NOT NULL DEFAULT FALSE,
    created    TEXT NOT NULL
);

CREATE TABLE notify_conditions (
    cond_key   TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    zone_id    TEXT NOT NULL DEFAULT '',
    account_id TEXT NOT NULL DEFAULT '',
    summary    TEXT NOT NULL DEFAULT '',
    first_seen TEXT NOT NULL,
    resolved   TEXT NOT NULL DEFAULT '',
    episode    INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX notify_conditions_resolved ON notify_conditions(resolved);

CREATE TABLE notify_deliveries (
    id            TEXT PRIMARY KEY,
    target_id     TEXT NOT NULL,
    condition_key TEXT NOT NULL DEFAULT '',
    event         TEXT NOT NULL,
    payload       TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  TEXT NOT NULL,
    last_error    TEXT NOT NULL DEFAULT '',
    delivered     TEXT NOT NULL DEFAULT '',
    failed        BOOLEAN NOT NULL DEFAULT FALSE,
    owner         TEXT NOT NULL DEFAULT '',
    lease_until   TEXT NOT NULL DEFAULT '',
    created       TEXT NOT NULL
);
CREATE INDEX notify_deliveries_due ON notify_deliveries(delivered, failed, next_attempt);
CREATE INDEX notify_deliveries_created ON notify_deliveries(created);
