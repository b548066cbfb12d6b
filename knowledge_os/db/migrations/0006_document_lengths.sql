-- BM25's N and average length (knowledge_os/retrieval/docstore_pg.py, search_text) from an
-- index-only scan instead of a scan of every row with its text.
-- depends: 0005_shared_embeddings

CREATE INDEX kos_documents_n_tokens ON kos_documents (n_tokens);
