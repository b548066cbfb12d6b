-- The answer cache (PostgreSQL; the SQLite twin is knowledge_os/cache/answers.py), shared
-- by every host. Times are the server's clock (epoch seconds), so hosts agree on the TTL.
-- depends: 0003_documents

CREATE TABLE kos_answer_cache (
    key TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    signature TEXT NOT NULL,
    domain TEXT NOT NULL,
    query TEXT NOT NULL,
    embedding BYTEA NOT NULL,  -- float32, little-endian, L2-normalised
    result TEXT NOT NULL,      -- JSON as written (orjson)
    created_at DOUBLE PRECISION NOT NULL,
    seq BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX kos_answer_cache_scope ON kos_answer_cache (scope, signature);
CREATE INDEX kos_answer_cache_age ON kos_answer_cache (created_at DESC, seq DESC);

-- DocumentStore.pending_count(): documents ingest's text stage wrote, their vectors to come.
CREATE INDEX kos_documents_pending ON kos_documents (id) WHERE content_hash = '';
