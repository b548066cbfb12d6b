-- Documents, their full-text index, exact entity index, package aliases and the corpus
-- generation (PostgreSQL; the SQLite twin is knowledge_os/retrieval/docstore.py).
-- depends: 0002_job_failures

CREATE TABLE kos_documents (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    ts BIGINT NOT NULL,
    source TEXT NOT NULL,
    metadata JSON NOT NULL DEFAULT '{}',  -- JSON, not JSONB: key order kept as written
    entities TEXT[] NOT NULL DEFAULT '{}',
    content_hash TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT '',
    -- title then text as FTS5 unicode61-like tokens with positions (lower-case, diacritics
    -- folded), built by knowledge_os/retrieval/docstore_pg.py: no stemming, no stop words
    tsv TSVECTOR NOT NULL,
    n_tokens INTEGER NOT NULL,  -- tokens in title and text (BM25's document length)
    -- CVE ids and bug numbers the entry names, whole and lower-case ('cve-2024-6387', '1055473')
    ids TEXT[] NOT NULL DEFAULT '{}'
);
CREATE INDEX kos_documents_tsv ON kos_documents USING GIN (tsv);
CREATE INDEX kos_documents_ids ON kos_documents USING GIN (ids);
CREATE INDEX kos_documents_channel_ts ON kos_documents (channel, ts);
CREATE INDEX kos_documents_ts ON kos_documents (ts);
CREATE INDEX kos_documents_origin ON kos_documents (origin);

CREATE TABLE kos_doc_entities (
    entity TEXT NOT NULL,
    doc_id TEXT NOT NULL REFERENCES kos_documents (id) ON DELETE CASCADE,
    PRIMARY KEY (entity, doc_id)
);
CREATE INDEX kos_doc_entities_doc ON kos_doc_entities (doc_id);

CREATE TABLE kos_package_aliases (
    alias TEXT PRIMARY KEY,
    channel TEXT NOT NULL
);

-- 'generation': how many ingests changed the corpus (part of the answer-cache scope).
CREATE TABLE kos_corpus_meta (
    key TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
