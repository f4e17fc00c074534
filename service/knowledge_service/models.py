"""Request and response models shared by both front doors (HTTP JSON and gRPC use the same names)."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import limits as L
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
            if not _META_KEY.match(key):
                raise ValueError(f"key {key!r} must match {L.METADATA_KEY_PATTERN}")
            if isinstance(value, list) and len(value) > L.MAX_METADATA_LIST:
                raise ValueError(f"key {key!r}: at most {L.MAX_METADATA_LIST} list items")
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


class SearchRequest(_Strict):
    namespace: Namespace
    query: str = Field(min_length=1, max_length=L.MAX_QUERY_CHARS)
    top_k: int = Field(L.DEFAULT_TOP_K, ge=1, le=L.MAX_TOP_K)
    filter: dict[str, Any] | None = None
    mode: Literal["hybrid", "dense", "sparse"] = "hybrid"
    fusion: Fusion = Field(default_factory=Fusion)
    candidates: int = Field(
        L.DEFAULT_CANDIDATES, ge=1, le=L.MAX_CANDIDATES, description="Per-leg depth and rerank depth."
    )
    rerank: bool | None = Field(None, description="None: rerank when a reranker is configured.")
    explain: bool = False

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

    @model_validator(mode="after")
    def _candidates_cover_top_k(self) -> SearchRequest:
        if self.candidates < self.top_k:
            raise ValueError(
                f"candidates ({self.candidates}) must be >= top_k ({self.top_k}); raise candidates"
            )
        return self

    def cache_fields(self) -> dict[str, Any]:
        """Every field that changes the results, in canonical form."""
        return self.model_dump(mode="json", exclude={"namespace"})


class StageScores(BaseModel):
    dense_rank: int | None = None
    sparse_rank: int | None = None
    fused: float | None = None
    rerank: float | None = None


class SearchHit(BaseModel):
    doc_id: str
    chunk_id: str
    text: str
    score: float
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    scores: StageScores = Field(default_factory=StageScores)


RerankStatus = Literal["applied", "not_configured", "disabled", "failed"]


class SearchResponse(BaseModel):
    results: list[SearchHit]
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
