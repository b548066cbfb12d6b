-- Shared embeddings (vectors.backend=postgres_edge): every document's vector in PostgreSQL,
-- copied by each host into its in-process index (knowledge_os/retrieval/vectors_shared.py).
-- 'vectors' in kos_corpus_meta counts write transactions; a row's seq is the count of the
-- transaction that last wrote it, so a host that has applied up to N fetches seq > N.
-- depends: 0004_answer_cache_pending

CREATE TABLE kos_embeddings (
    id TEXT PRIMARY KEY,
    vector BYTEA NOT NULL,   -- float32, little-endian
    payload JSON NOT NULL,   -- channel, ts, source
    seq BIGINT NOT NULL
);
CREATE INDEX kos_embeddings_seq ON kos_embeddings (seq);

-- Ids removed, with the transaction that removed them (a host applies these too).
CREATE TABLE kos_embedding_deletes (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);
CREATE INDEX kos_embedding_deletes_seq ON kos_embedding_deletes (seq);
