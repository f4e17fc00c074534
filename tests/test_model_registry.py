"""The model registry: a backend is chosen by name, and an unknown one is refused naming the known."""

from __future__ import annotations

import pytest

from knowledge_service.core.config import Settings
from knowledge_service.models import registry
from knowledge_service.models.base import DenseModel, RerankModel, SparseModel
from knowledge_service.models.dense import DenseEncoder


def test_every_registered_backend_implements_its_kind() -> None:
    for table, kind in (
        (registry.DENSE, DenseModel),
        (registry.SPARSE, SparseModel),
        (registry.RERANK, RerankModel),
    ):
        for backend, factory in table.items():
            assert isinstance(factory, type) and issubclass(factory, kind), backend


@pytest.mark.parametrize(
    "load",
    [
        lambda: registry.load_dense("m", backend="cuda-magic"),
        lambda: registry.load_reranker("m", backend="x"),
    ],
)
def test_an_unknown_backend_is_refused_naming_the_known_ones(load) -> None:
    with pytest.raises(ValueError, match=r"unknown \w+ backend '[\w-]+'; known: \['torch'\]"):
        load()


def test_the_default_backends_load(dense_encoder: DenseEncoder) -> None:
    sparse = registry.load_sparse(Settings())
    assert isinstance(sparse, SparseModel) and list(sparse.query("lexical search").indices)
    assert isinstance(dense_encoder, DenseModel) and dense_encoder.dim == 384
