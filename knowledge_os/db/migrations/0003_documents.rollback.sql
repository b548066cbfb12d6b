DROP TABLE IF EXISTS kos_corpus_meta;
DROP TABLE IF EXISTS kos_package_aliases;
DROP TABLE IF EXISTS kos_doc_entities;
DROP TABLE IF EXISTS kos_documents;
