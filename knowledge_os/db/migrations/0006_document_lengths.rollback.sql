DROP INDEX IF EXISTS kos_documents_n_tokens;
