"""Typed results (and the one input type, :class:`Document`); field names are the proto's.

Result models ignore fields they do not know, so an older client keeps working against a newer
service.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

T = TypeVar("T")


def _unset_if_empty(value: Any) -> Any:
    return None if isinstance(value, list | tuple) and not value else value


# A list where None means "unset". The proto has no null list: an unset one arrives over gRPC as
# [] (and the service reads [] as unset), so an empty list is read as None on both transports.
NoneIfEmpty = Annotated[list[T] | None, BeforeValidator(_unset_if_empty)]


class _Result(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Document(BaseModel):
    """A document to ingest: the caller's id, its text, and optional title and metadata."""

    model_config = ConfigDict(extra="forbid")

    id: str
    text: str
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Fusion(BaseModel):
    """How the dense and BM25 legs are fused: ``rrf`` (with ``k`` and leg ``weights``) or ``dbsf``."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["rrf", "dbsf"] = "rrf"
    k: int | None = None
    weights: NoneIfEmpty[float] = None


IngestStatus = Literal["created", "updated", "unchanged", "failed"]


class IngestResult(_Result):
    """One document's outcome; ``error`` says why when ``status`` is ``failed``."""

    id: str
    status: IngestStatus
    chunks: int = 0
    error: str | None = None


class IngestResponse(_Result):
    """Every document's outcome and the namespace's index version after the call."""

    results: list[IngestResult]
    index_version: int = 0


class StageScores(_Result):
    """Rank (1-based) and score of a hit at each stage; the leg fields are filled with ``explain``."""

    dense_rank: int | None = None
    sparse_rank: int | None = None
    fused: float | None = None
    rerank: float | None = None
    dense_score: float | None = None
    sparse_score: float | None = None
    fused_rank: int | None = None
    rerank_rank: int | None = None


class SearchHit(_Result):
    """One chunk: its document, its text and its scores."""

    doc_id: str
    chunk_id: str
    text: str
    score: float
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    scores: StageScores = Field(default_factory=StageScores)


class SearchResponse(_Result):
    """Ranked chunks, best first, and how the answer was made.

    ``rerank`` is one of ``applied``, ``not_configured``, ``disabled``, ``failed``, ``skipped``
    (cut to meet the deadline); ``degraded``
    lists stages that failed and were skipped (``cache``, ``rerank``); ``profile`` and
    ``profile_version`` name the retrieval settings that answered.
    """

    results: list[SearchHit]
    cache_hit: bool = False
    degraded: list[str] = Field(default_factory=list)
    rerank: str = "not_configured"
    index_version: int = 0
    timings_ms: dict[str, float] = Field(default_factory=dict)
    profile: str = ""
    profile_version: int = 0


class StoredDocument(_Result):
    """A document as the service stores it."""

    id: str
    text: str
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    chunks: int = 0
    content_hash: str = ""
    updated_at: float = 0.0


class DeleteResponse(_Result):
    """How many documents were deleted, and the index version after the call."""

    deleted: int
    index_version: int = 0


class CountResponse(_Result):
    """Documents and chunks in a namespace (under the filter, if one was given)."""

    documents: int
    chunks: int
    index_version: int = 0


# ----------------------------------------------------------------------------- profiles


class RetrievalSettings(BaseModel):
    """How retrieval works: what a profile holds (unset fields take the service's defaults).

    Also the shape of a search's ``overrides``.
    """

    model_config = ConfigDict(extra="ignore")

    mode: Literal["hybrid", "dense", "sparse"] | None = None
    top_k: int | None = None
    candidates: int | None = None
    fusion: Fusion | None = None
    rerank: bool | None = None
    rerank_depth: int | None = None
    score_threshold: float | None = None
    stitch: bool | None = None


class Profile(_Result):
    """One version of a named profile."""

    name: str
    version: int
    settings: RetrievalSettings
    created_at: float = 0.0
    note: str | None = None


class RequireEval(BaseModel):
    """The evaluation gate of a profile change: a labelled query set, a BEIR folder on the server
    (``dataset``, ``split``) or uploaded (``queries``: id -> text, ``qrels``: query id -> doc id ->
    grade), searched in ``namespace``; the change is refused (``PreconditionFailed``) if it loses
    more than ``min_delta`` nDCG@10 against the active version."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = None
    queries: dict[str, str] | None = None
    qrels: dict[str, dict[str, int]] | None = None
    namespace: str
    split: str = "test"
    min_delta: float = 0.0


class NamespaceSettings(_Result):
    """A namespace's settings: the profile its searches use when they name none."""

    namespace: str
    default_profile: str
