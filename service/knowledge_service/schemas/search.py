"""Search: retrieval settings (what a profile holds), requests, results and their stage scores."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from knowledge_service.core import limits as L
from knowledge_service.schemas.common import Namespace, ProfileName, Strict, normalise_query
from knowledge_service.schemas.filters import validate_filter


class Fusion(Strict):
    method: Literal["rrf", "dbsf"] = "rrf"
    k: int = Field(60, ge=1, le=L.MAX_RRF_K, description="RRF constant (rrf only).")
    weights: list[Annotated[float, Field(ge=0, le=L.MAX_LEG_WEIGHT)]] | None = Field(
        None, min_length=2, max_length=2, description="[dense, sparse] leg weights (rrf only)."
    )


Mode = Literal["hybrid", "dense", "sparse"]


class RetrievalSettings(Strict):
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


class SearchRequest(Strict):
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
