"""The model registry: a backend is chosen by name, and an unknown one is refused naming the known."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_service.core.config import Settings
from knowledge_service.models import registry
from knowledge_service.models.base import DenseModel, SparseModel


@pytest.mark.parametrize("backend", sorted(registry.DENSE))
def test_every_dense_backend_loads_the_configured_model(backend: str) -> None:
    model = registry.load_dense(
        Settings().embed_model, backend=backend, options=registry.Options.of(Settings())
    )
    assert isinstance(model, DenseModel) and model.dim == 384 and model.backend == backend
    assert len(model.encode(["vectors and lexical search"])[0]) == 384


def test_every_reranker_backend_loads_a_cross_encoder(tiny_cross_encoder: Path) -> None:
    for backend in sorted(registry.RERANK):
        model = registry.load_reranker(
            str(tiny_cross_encoder), backend=backend, options=registry.Options.of(Settings())
        )
        assert model.backend == backend and len(model.score("q", ["a", "b", "c"])) == 3


@pytest.mark.parametrize(
    "load",
    [
        lambda: registry.load_dense("m", backend="cuda-magic"),
        lambda: registry.load_reranker("m", backend="x"),
    ],
)
def test_an_unknown_backend_is_refused_naming_the_known_ones(load) -> None:
    with pytest.raises(
        ValueError, match=r"unknown \w+ backend '[\w-]+'; known: \['onnx', 'onnx-int8', 'torch'\]"
    ):
        load()


def test_the_backend_settings_take_only_known_names() -> None:
    with pytest.raises(ValueError, match="embed_backend"):
        Settings(embed_backend="tensorrt")  # type: ignore[arg-type]


def test_the_default_sparse_backend_loads() -> None:
    sparse = registry.load_sparse(Settings())
    assert isinstance(sparse, SparseModel) and list(sparse.query("lexical search").indices)
