"""The model registry: each kind's backends by name, so a setting picks one and nothing else changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from knowledge_service.core.config import Settings
from knowledge_service.models.base import DenseModel, RerankModel, SparseModel
from knowledge_service.models.dense import DenseEncoder
from knowledge_service.models.reranker import Reranker
from knowledge_service.models.sparse import SparseEncoder

DENSE: dict[str, Callable[..., DenseModel]] = {"torch": DenseEncoder}
SPARSE: dict[str, Callable[[Settings], SparseModel]] = {"qdrant-edge-bm25": SparseEncoder}
RERANK: dict[str, Callable[..., RerankModel]] = {"torch": Reranker}

F = TypeVar("F")


def _backend(table: dict[str, F], kind: str, backend: str) -> F:
    try:
        return table[backend]
    except KeyError:
        raise ValueError(f"unknown {kind} backend {backend!r}; known: {sorted(table)}") from None


def load_dense(spec: str, *, backend: str = "torch", device: str = "cpu", batch_size: int = 32) -> DenseModel:
    return _backend(DENSE, "dense", backend)(spec, device=device, batch_size=batch_size)


def load_sparse(settings: Settings, *, backend: str = "qdrant-edge-bm25") -> SparseModel:
    return _backend(SPARSE, "sparse", backend)(settings)


def load_reranker(spec: str, *, backend: str = "torch", device: str = "cpu") -> RerankModel:
    return _backend(RERANK, "reranker", backend)(spec, device=device)
