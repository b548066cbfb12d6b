DROP TABLE IF EXISTS kos_answer_cache;
DROP INDEX IF EXISTS kos_documents_pending;
