-- What the maintainer finds and does: suggestions (with their evidence) and supervisor verdicts.

CREATE TABLE IF NOT EXISTS suggestions (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('remove_route', 'clear_stale', 'add_route')),
    route_id       TEXT NOT NULL,
    provider       TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'applied', 'rejected')),
    -- why: the listing entry, the probe's answer, the supervisor's verdict (JSON)
    evidence       TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    seen_ms        INTEGER NOT NULL,
    decided_ms     INTEGER,
    -- 'auto' (auto-maintenance) or 'human'
    decided_by     TEXT
);
-- one open suggestion of a kind per route
CREATE UNIQUE INDEX IF NOT EXISTS suggestions_one_pending
    ON suggestions (kind, route_id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS suggestions_status ON suggestions (status, seen_ms);

CREATE TABLE IF NOT EXISTS supervisor_verdicts (
    provider        TEXT NOT NULL,
    upstream_model  TEXT NOT NULL,
    free_chat_model INTEGER NOT NULL,
    confidence      TEXT NOT NULL,
    reason          TEXT NOT NULL,
    sources         TEXT NOT NULL,
    asked_route     TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL,
    PRIMARY KEY (provider, upstream_model)
);
