"""The model registry: each kind's backends by name, so a setting picks one and nothing else changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from knowledge_service.core.config import Settings
from knowledge_service.models.base import DenseModel, RerankModel, SparseModel
from knowledge_service.models.dense import DenseEncoder
from knowledge_service.models.onnx import OnnxEncoder, OnnxReranker
from knowledge_service.models.reranker import Reranker
from knowledge_service.models.sparse import SparseEncoder


@dataclass(frozen=True)
class Options:
    """How models are run: device (torch), batch size, where ONNX exports are kept, threads."""

    device: str = "cpu"
    batch_size: int = 32
    models_dirs: tuple[Path, ...] = ()
    threads: int = 0

    @classmethod
    def of(cls, s: Settings) -> Options:
        return cls(s.device, s.embed_batch_size, s.models_dirs, s.onnx_threads)


DENSE: dict[str, Callable[[str, Options], DenseModel]] = {
    "torch": lambda spec, o: DenseEncoder(spec, device=o.device, batch_size=o.batch_size),
    **{
        name: lambda spec, o, name=name: OnnxEncoder(  # type: ignore[misc]
            spec, backend=name, models_dirs=list(o.models_dirs), batch_size=o.batch_size, threads=o.threads
        )
        for name in ("onnx", "onnx-int8")
    },
}
SPARSE: dict[str, Callable[[Settings], SparseModel]] = {"qdrant-edge-bm25": SparseEncoder}
RERANK: dict[str, Callable[[str, Options], RerankModel]] = {
    "torch": lambda spec, o: Reranker(spec, device=o.device),
    **{
        name: lambda spec, o, name=name: OnnxReranker(  # type: ignore[misc]
            spec, backend=name, models_dirs=list(o.models_dirs), threads=o.threads
        )
        for name in ("onnx", "onnx-int8")
    },
}

F = TypeVar("F")


def _backend(table: dict[str, F], kind: str, backend: str) -> F:
    try:
        return table[backend]
    except KeyError:
        raise ValueError(f"unknown {kind} backend {backend!r}; known: {sorted(table)}") from None


def load_dense(spec: str, *, backend: str = "torch", options: Options = Options()) -> DenseModel:
    return _backend(DENSE, "dense", backend)(spec, options)


def load_sparse(settings: Settings, *, backend: str = "qdrant-edge-bm25") -> SparseModel:
    return _backend(SPARSE, "sparse", backend)(settings)


def load_reranker(spec: str, *, backend: str = "torch", options: Options = Options()) -> RerankModel:
    return _backend(RERANK, "reranker", backend)(spec, options)
