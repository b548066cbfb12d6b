"""Personas: who an answer is for (seed 002, section 9). Profiles in YAML
(:mod:`~knowledge_os.personas.profiles`), embedded offline into an index stored with the
vector index (:mod:`~knowledge_os.personas.index`, ``kos persona build``), and a request's
persona resolved by name or by embedding (:mod:`~knowledge_os.personas.registry`)."""
