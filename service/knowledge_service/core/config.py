"""Service settings: the one place that reads the environment (prefix ``KNOWLEDGE_``)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBED_MODEL = "bundled:all-MiniLM-L6-v2"
Backend = Literal["torch", "onnx", "onnx-int8"]


class Settings(BaseSettings):
    """Every setting of the service, read from ``KNOWLEDGE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="KNOWLEDGE_", env_file=None, extra="ignore")

    # Where things live.
    data_dir: Path = Field(Path("./data"), description="Qdrant Edge store (embedded default).")
    qdrant_url: str | None = Field(
        None, description="Qdrant server URL; switches from Edge to qdrant-client. ':memory:' = local mode."
    )
    qdrant_api_key: str | None = None
    qdrant_collection_prefix: str = "knowledge"
    redis_url: str | None = Field(None, description="Redis result cache; in-process cache when unset.")

    # Front doors.
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(50051, ge=0, le=65535)
    grpc_grace_s: float = Field(5.0, ge=0, description="Graceful shutdown period.")

    # Models.
    embed_model: str = Field(DEFAULT_EMBED_MODEL, description="sentence-transformers name or path.")
    embed_backend: Backend = Field(
        "onnx-int8", description="What runs the dense encoder: torch, onnx or onnx-int8."
    )
    embed_batch_size: int = Field(32, ge=1, le=1024)
    query_batch_max: int = Field(
        32, ge=1, le=1024, description="Concurrent queries encoded together, at most."
    )
    query_batch_window_ms: float = Field(
        1.0, ge=0, le=100, description="Under load, how long a query waits for others to share its batch."
    )
    query_encode_parallel: int = Field(
        0,
        ge=0,
        le=64,
        description="Query encodes run side by side, at most; 0 = one per core for a backend whose "
        "queries are encoded alone (onnx-int8), else 1 (batches fill the cores).",
    )
    rerank_model: str | None = Field(None, description="CrossEncoder name or path; unset = no reranking.")
    rerank_backend: Backend = Field("onnx", description="What runs the reranker: torch, onnx or onnx-int8.")
    rerank_budget_ms: int = Field(
        1000, ge=1, description="Rerank stage time budget; beyond it the fused order is served (skipped)."
    )
    device: str = Field("cpu", description="torch backends: the device to run on.")
    models_dir: Path | None = Field(
        None, description="ONNX exports are made and kept here; unset = <data_dir>/models."
    )
    models_prebuilt_dir: Path | None = Field(
        None, description="Read-only folder of exports made ahead (the image's); searched first."
    )
    onnx_threads: int = Field(
        0, ge=0, le=256, description="ONNX Runtime threads per model; 0 = one per core."
    )

    # Chunking (tokens of the embedding model's tokenizer) and BM25.
    chunk_tokens: int = Field(200, ge=16, le=8192)
    chunk_overlap: int = Field(32, ge=0, le=4096)
    bm25_k: float = Field(1.2, ge=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    bm25_avg_len: float = Field(120.0, gt=0, description="Expected chunk length in BM25 tokens.")
    bm25_language: str = "english"

    # Parsing uploaded files (pipelines/parsing/pool.py): worker processes, each file within these limits.
    parse_workers: int = Field(2, ge=1, le=64, description="Worker processes that parse files.")
    parse_timeout_s: float = Field(20.0, gt=0, description="Wall time one file may take to parse.")
    parse_memory_mb: int = Field(256, ge=32, description="Memory a worker may map above its baseline.")
    parse_max_pages: int = Field(2_000, ge=1, description="Pages a PDF may have.")

    # Cache.
    cache_ttl_s: int = Field(600, ge=1)
    cache_max_bytes: int = Field(256 * 2**20, ge=0, description="In-process cache: total bytes of answers.")
    cache_max_entry_bytes: int = Field(
        2**20, ge=0, description="Answers larger than this are not cached (either cache)."
    )
    cache_timeout_s: float = Field(0.05, gt=0, description="A slower cache counts as down.")
    cache_decoded_entries: int = Field(
        1024,
        ge=0,
        le=1_000_000,
        description="Answers kept decoded in process in front of either cache, so a repeated search "
        "skips the cache's round trip and the decode; 0 = none.",
    )

    # Store.
    store_workers: int = Field(4, ge=1, le=64)
    optimize_idle_s: float = Field(
        10.0, ge=0, description="Edge: optimise the index after this long without writes; 0 = never."
    )
    optimize_min_points: int = Field(
        20_000, ge=0, description="Edge: only optimise when at least this many points are unindexed."
    )
    min_free_disk_mb: int = Field(
        512,
        ge=0,
        description="Edge: new chunks are refused (503) while the data dir's disk has less free than "
        "this, and the index is not optimised on a copy that would leave less; 0 = no check. The "
        "engine maps its files into memory, so a write that finds no disk left would crash it.",
    )
    sweep_interval_s: float = Field(
        60.0, ge=0, description="How often leftovers of unsettled writes are swept; 0 = never."
    )
    sweep_grace_s: float = Field(
        3600.0, gt=0, description="A write's unsettled chunks are swept only once this much older."
    )
    sweep_scan_interval_s: float = Field(
        86_400.0, ge=0, description="How often every chunk is checked for a live record; 0 = never."
    )

    # Security (see ops/auth.py): hashed API keys scoped to namespaces and roles.
    api_keys_file: Path | None = Field(None, description="JSON list of hashed keys (a mounted secret).")
    api_keys: str | None = Field(None, description="The same JSON, inline.")
    auth_required: bool = Field(False, description="Refuse to start without keys; check every call.")
    tls_cert_file: Path | None = Field(None, description="PEM certificate: serve HTTPS and gRPC over TLS.")
    tls_key_file: Path | None = Field(None, description="PEM private key for tls_cert_file.")
    rate_limit_per_key: float = Field(0.0, ge=0, description="Requests per second per API key; 0 = off.")
    rate_limit_burst: int = Field(20, ge=1, description="Burst allowed above the per-key rate.")
    health_public: bool = Field(True, description="/healthz and /readyz answer without a key.")
    metrics_public: bool = Field(True, description="/metrics answers without a key (else: admin on '*').")
    allow_unauthenticated: bool = Field(
        False, description="Serve on a non-loopback address without API keys (refused otherwise)."
    )
    docs_enabled: bool = Field(True, description="Serve /docs, /redoc and /openapi.json.")
    grpc_reflection: bool = Field(True, description="Serve gRPC server reflection.")

    # Limits and backpressure (ops/admission.py).
    max_concurrent_searches: int = Field(32, ge=1, description="Searches in flight per replica.")
    max_concurrent_ingests: int = Field(4, ge=1, description="Ingest batches in flight per replica.")
    queue_wait_s: float = Field(0.5, ge=0, description="How long a request waits for a slot before 429.")
    retry_after_s: float = Field(1.0, gt=0, description="The retry-after hint sent with a 429.")

    # Observability.
    log_level: str = Field("INFO", pattern=r"(?i)^(debug|info|warning|error|critical)$")
    log_format: Literal["json", "text"] = "json"
    log_queries: bool = Field(False, description="Put query text in access logs.")
    otel_enabled: bool = Field(False, description="Export OpenTelemetry traces over OTLP.")
    otel_endpoint: str = Field("http://127.0.0.1:4317", description="OTLP/gRPC collector endpoint.")
    otel_service_name: str = "knowledge-sidecar"

    # Evaluations.
    eval_datasets_dir: Path | None = Field(
        None, description="Folder of BEIR datasets evaluations may read; unset = uploaded query sets only."
    )
    max_concurrent_evaluations: int = Field(
        1, ge=1, description="Evaluations and require_eval checks in flight per replica; more get 429."
    )

    # Profiles.
    profile_poll_s: float = Field(1.0, gt=0, description="How often a replica checks for profile changes.")

    @property
    def models_dirs(self) -> tuple[Path, ...]:
        """Where ONNX exports are looked for, in order; new ones are made in the last."""
        made = self.models_dir or self.data_dir / "models"
        return (self.models_prebuilt_dir, made) if self.models_prebuilt_dir else (made,)

    @cached_property
    def edge_path(self) -> Path:
        return self.data_dir / "edge"
