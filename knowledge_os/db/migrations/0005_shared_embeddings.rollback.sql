DROP TABLE IF EXISTS kos_embedding_deletes;
DROP TABLE IF EXISTS kos_embeddings;
