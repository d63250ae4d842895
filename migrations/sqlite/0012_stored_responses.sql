-- Responses kept for `previous_response_id` and `GET /v1/responses/{id}` when the owner turns
-- storing on (storage.responses_retention_hours > 0): the Response object as answered, and the
-- conversation as chat messages (the turns so far, instructions left out) a follow-up continues.
CREATE TABLE IF NOT EXISTS stored_responses (
    id TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    response TEXT NOT NULL,
    conversation TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS stored_responses_expiry ON stored_responses (expires_ms);
