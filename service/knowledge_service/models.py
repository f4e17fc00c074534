"""Request and response models shared by both front doors (HTTP JSON and gRPC use the same names)."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import limits as L
from .errors import from_validation_error
from .filters import validate_filter

Namespace = Annotated[str, Field(pattern=L.NAMESPACE_PATTERN, description="Knowledge base name.")]
MetadataValue = str | int | float | bool | list[str | int | float | bool]

_META_KEY = re.compile(L.METADATA_KEY_PATTERN)
_WS = re.compile(r"\s+")


def normalise_query(text: str) -> str:
    """Canonical query text: Unicode NFKC, whitespace collapsed, trimmed (case is kept)."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


M = TypeVar("M", bound=BaseModel)


def parse(cls: type[M], **data: Any) -> M:
    """Validate ``data`` as ``cls``; a failure is an InvalidArgument naming each field."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


# ----------------------------------------------------------------------------- ingest


class DocumentIn(_Strict):
    id: str = Field(min_length=1, max_length=L.MAX_DOC_ID_CHARS)
    text: str = Field(min_length=1, max_length=L.MAX_DOC_CHARS)
    title: str | None = Field(None, max_length=L.MAX_TITLE_CHARS)
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _printable_id(cls, v: str) -> str:
        if any(unicodedata.category(c).startswith("C") for c in v):
            raise ValueError("must not contain control characters")
        return v

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must contain some non-whitespace text")
        return v

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(v) > L.MAX_METADATA_KEYS:
            raise ValueError(f"at most {L.MAX_METADATA_KEYS} keys (got {len(v)})")
        for key, value in v.items():
            if not _META_KEY.fullmatch(key):
                raise ValueError(f"key {key!r} must match {L.METADATA_KEY_PATTERN}")
            if isinstance(value, list) and len(value) > L.MAX_METADATA_LIST:
                raise ValueError(f"key {key!r}: at most {L.MAX_METADATA_LIST} list items")
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, float) and not math.isfinite(item):
                    raise ValueError(f"key {key!r}: numbers must be finite")
                if isinstance(item, int) and not L.INT64_MIN <= item <= L.INT64_MAX:
                    raise ValueError(f"key {key!r}: integers must fit in 64 bits")
        size = len(json.dumps(v, ensure_ascii=False).encode())
        if size > L.MAX_METADATA_BYTES:
            raise ValueError(f"at most {L.MAX_METADATA_BYTES} bytes as JSON (got {size})")
        return v


class IngestRequest(_Strict):
    namespace: Namespace
    # Items stay raw here so that one bad document fails alone (see core.ingest).
    documents: list[dict[str, Any]] = Field(min_length=1, max_length=L.MAX_BATCH_DOCS)


IngestStatus = Literal["created", "updated", "unchanged", "failed"]


class IngestResult(BaseModel):
    id: str
    status: IngestStatus
    chunks: int = 0
    error: str | None = None


class IngestResponse(BaseModel):
    results: list[IngestResult]
    index_version: int


# ----------------------------------------------------------------------------- search


class Fusion(_Strict):
    method: Literal["rrf", "dbsf"] = "rrf"
    k: int = Field(60, ge=1, le=L.MAX_RRF_K, description="RRF constant (rrf only).")
    weights: list[Annotated[float, Field(ge=0, le=L.MAX_LEG_WEIGHT)]] | None = Field(
        None, min_length=2, max_length=2, description="[dense, sparse] leg weights (rrf only)."
    )


Mode = Literal["hybrid", "dense", "sparse"]
ProfileName = Annotated[str, Field(pattern=L.NAMESPACE_PATTERN, description="Profile name.")]


class RetrievalSettings(_Strict):
    """How retrieval works: what a profile holds, and the single source of every default."""

    mode: Mode = "hybrid"
    top_k: int = Field(L.DEFAULT_TOP_K, ge=1, le=L.MAX_TOP_K, description="Results returned.")
    candidates: int = Field(
        L.DEFAULT_CANDIDATES, ge=1, le=L.MAX_CANDIDATES, description="Depth of each leg before fusion."
    )
    # DBSF: chosen with the evaluation gate on SciFact (train), Cranfield and Vaswani (README).
    fusion: Fusion = Field(default_factory=lambda: Fusion(method="dbsf"))
    rerank: bool = Field(True, description="Rerank when a reranker is configured.")
    rerank_depth: int = Field(
        L.DEFAULT_RERANK_DEPTH, ge=1, le=L.MAX_CANDIDATES, description="Fused chunks the reranker scores."
    )
    score_threshold: float | None = Field(
        None, description="Drop results whose final score (rerank, else fused) is below this."
    )
    stitch: bool = Field(False, description="Merge adjacent chunks of one document into one result.")

    @model_validator(mode="after")
    def _depths_cover_top_k(self) -> RetrievalSettings:
        if self.candidates < self.top_k:
            raise ValueError(
                f"candidates ({self.candidates}) must be >= top_k ({self.top_k}); raise candidates"
            )
        return self

    def merged(self, overrides: dict[str, Any]) -> RetrievalSettings:
        """These settings with ``overrides`` applied and the result validated (limits included)."""
        return RetrievalSettings.model_validate({**self.model_dump(), **overrides})


class SearchRequest(_Strict):
    namespace: Namespace
    query: str = Field(min_length=1, max_length=L.MAX_QUERY_CHARS)
    filter: dict[str, Any] | None = None
    profile: ProfileName | None = Field(None, description="Unset: the namespace's default profile.")
    overrides: dict[str, Any] | None = Field(
        None, description="Fields of the profile to change for this call."
    )
    explain: bool = False
    # Shorthand overrides, same limits as the profile fields.
    top_k: int | None = Field(None, ge=1, le=L.MAX_TOP_K)
    mode: Mode | None = None
    fusion: Fusion | None = None
    candidates: int | None = Field(None, ge=1, le=L.MAX_OVERRIDE_CANDIDATES)
    rerank: bool | None = Field(None, description="Unset: as the profile says.")

    @field_validator("query")
    @classmethod
    def _normalise(cls, v: str) -> str:
        v = normalise_query(v)
        if not v:
            raise ValueError("must contain some non-whitespace text")
        return v

    @field_validator("filter", mode="before")
    @classmethod
    def _filter(cls, v: Any) -> Any:
        return validate_filter(v)

    @field_validator("overrides")
    @classmethod
    def _known_fields(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        unknown = sorted(set(v or {}) - set(RetrievalSettings.model_fields))
        if unknown:
            raise ValueError(f"unknown fields {unknown}; allowed: {sorted(RetrievalSettings.model_fields)}")
        return v or None

    def override_fields(self) -> dict[str, Any]:
        """``overrides`` plus the shorthand fields that are set (the shorthand wins)."""
        short = {k: getattr(self, k) for k in ("top_k", "mode", "fusion", "candidates", "rerank")}
        return {
            **(self.overrides or {}),
            **{
                k: v.model_dump() if isinstance(v, BaseModel) else v
                for k, v in short.items()
                if v is not None
            },
        }


class StageScores(BaseModel):
    """Rank (1-based) and score at each stage; the leg fields are filled with ``explain``."""

    dense_rank: int | None = None
    dense_score: float | None = None
    sparse_rank: int | None = None
    sparse_score: float | None = None
    fused_rank: int | None = None
    fused: float | None = None
    rerank_rank: int | None = None
    rerank: float | None = None


class SearchHit(BaseModel):
    doc_id: str
    chunk_id: str
    text: str
    score: float
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    scores: StageScores = Field(default_factory=StageScores)


RerankStatus = Literal["applied", "not_configured", "disabled", "failed", "skipped"]


class SearchResponse(BaseModel):
    results: list[SearchHit]
    profile: str = "default"
    profile_version: int = 0
    cache_hit: bool = False
    degraded: list[str] = Field(default_factory=list)
    rerank: RerankStatus = "not_configured"
    index_version: int = 0
    timings_ms: dict[str, float] = Field(default_factory=dict)


# ----------------------------------------------------------------------------- documents


class DocumentRef(_Strict):
    namespace: Namespace
    doc_id: str = Field(min_length=1, max_length=L.MAX_DOC_ID_CHARS)


class DocumentOut(BaseModel):
    id: str
    title: str | None = None
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    chunks: int
    content_hash: str
    updated_at: float


class DeleteResponse(BaseModel):
    deleted: int
    index_version: int


class CountResponse(BaseModel):
    documents: int
    chunks: int
    index_version: int


class DeleteRequest(_Strict):
    namespace: Namespace
    ids: list[Annotated[str, Field(min_length=1, max_length=L.MAX_DOC_ID_CHARS)]] = Field(
        default_factory=list, max_length=L.MAX_BATCH_DOCS
    )
    filter: dict[str, Any] | None = None

    @field_validator("filter", mode="before")
    @classmethod
    def _filter(cls, v: Any) -> Any:
        return validate_filter(v)

    @model_validator(mode="after")
    def _something(self) -> DeleteRequest:
        if not self.ids and not self.filter:
            raise ValueError("give ids, a filter, or both")
        return self


class CountRequest(_Strict):
    namespace: Namespace
    filter: dict[str, Any] | None = None

    @field_validator("filter", mode="before")
    @classmethod
    def _filter(cls, v: Any) -> Any:
        return validate_filter(v)


# ----------------------------------------------------------------------------- profiles


class RequireEval(_Strict):
    """The evaluation gate: a labelled query set run on a namespace, from a BEIR folder under
    KNOWLEDGE_EVAL_DATASETS_DIR (``dataset``, ``split``) or uploaded (``queries``, ``qrels``)."""

    dataset: str | None = Field(
        None, description="A BEIR folder under KNOWLEDGE_EVAL_DATASETS_DIR: its name or a path inside it."
    )
    split: str = Field("test", description="The qrels file of the dataset: qrels/<split>.tsv.")
    queries: dict[str, str] | None = Field(None, description="Uploaded instead of dataset: id -> text.")
    qrels: dict[str, dict[str, int]] | None = Field(None, description="query id -> doc id -> grade.")
    namespace: Namespace
    min_delta: float = Field(0.0, ge=0, le=1, description="nDCG@10 the new version may lose.")

    @model_validator(mode="after")
    def _one_query_set(self) -> RequireEval:
        from .evaluation import check_query_set  # the evaluation limits live beside the dataset loader

        check_query_set(self.dataset, self.queries, self.qrels)
        return self


class PutProfileRequest(_Strict):
    name: ProfileName
    settings: dict[str, Any] = Field(default_factory=dict, description="Unset fields take the defaults.")
    expected_version: int | None = Field(None, ge=0, description="Fail with 409 unless this is current.")
    require_eval: RequireEval | None = None
    note: str | None = Field(None, max_length=500)


class RollbackRequest(_Strict):
    version: int = Field(ge=1)


class NamespaceSettings(_Strict):
    namespace: Namespace
    default_profile: ProfileName
