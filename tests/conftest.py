"""Shared fixtures: the real embedding model, real Redis, real stores in temporary folders."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# ONNX exports are made once per test session and shared by every core and server it starts.
os.environ.setdefault("KNOWLEDGE_MODELS_DIR", tempfile.mkdtemp(prefix="knowledge-models-"))

import hypothesis  # noqa: E402

from harness import OneCallAtATime, RedisServer, grpc_channel, redis_answers, serve_http  # noqa: E402
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc  # noqa: E402
from knowledge_service.app import Knowledge  # noqa: E402
from knowledge_service.core.config import Settings  # noqa: E402
from knowledge_service.models.base import DenseModel, resolve_model  # noqa: E402
from knowledge_service.models.registry import Options, load_dense  # noqa: E402

# Property tests: the same examples on every run of the suite, and nothing written to the repo;
# HYPOTHESIS_PROFILE=deep searches far wider, with fresh random examples each time.
hypothesis.settings.register_profile("suite", derandomize=True, database=None, deadline=None)
hypothesis.settings.register_profile("deep", max_examples=2_000, database=None, deadline=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"


def dataset(name: str) -> Path:
    """The folder of dataset ``name`` under DATASETS. When it is missing the test fails if the
    ``CI`` environment variable is set (CI must never pass by skipping), and skips otherwise."""
    path = DATASETS / name
    if not path.is_dir():
        where = f"dataset {name!r} not found at {path} (datasets are read from ../shared/datasets)"
        if os.environ.get("CI"):
            pytest.fail(f"{where}; CI is set, so a missing dataset is a failure", pytrace=False)
        pytest.skip(f"{where}; with CI set this fails")
    return path


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """Redis at 127.0.0.1:6379 when it answers, else a throwaway redis-server on a free port."""
    if redis_answers(6379):
        yield "redis://127.0.0.1:6379/0"
        return
    server = RedisServer(
        "no Redis at 127.0.0.1:6379 and no redis-server binary (apt-get install redis-server)"
    )
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dense_encoder() -> DenseModel:
    """The real all-MiniLM-L6-v2 on the shipped default backend, loaded once per test session."""
    s = Settings()
    return load_dense(s.embed_model, backend=s.embed_backend, options=Options.of(s))


@pytest.fixture(scope="session")
def torch_encoder() -> DenseModel:
    """The same model on torch (the reference the other backends are checked against)."""
    return load_dense(Settings().embed_model, backend="torch")


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer BERT cross-encoder with random weights and MiniLM's tokenizer, saved to disk."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path_factory.mktemp("tiny-ce")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(Settings().embed_model))
    torch.manual_seed(7)
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=1,
        )
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", http_port=0, grpc_port=0, optimize_idle_s=0)


@pytest.fixture
async def core(settings: Settings, dense_encoder: DenseModel) -> AsyncIterator[Knowledge]:
    """A core on a fresh embedded (Edge) store with the in-process cache."""
    c = await Knowledge.open(settings, dense=dense_encoder)
    yield c
    await c.close()


@pytest.fixture(params=["edge", "qdrant-client"])
async def any_core(
    request: pytest.FixtureRequest, settings: Settings, dense_encoder: DenseModel
) -> AsyncIterator[Knowledge]:
    """The same core on each storage backend: Edge, and qdrant-client (local mode, see
    ``OneCallAtATime``)."""
    if request.param == "qdrant-client":
        settings = settings.model_copy(update={"qdrant_url": ":memory:"})
    c = await Knowledge.open(settings, dense=dense_encoder)
    if request.param == "qdrant-client":
        client = OneCallAtATime(c.stores[0].client)  # type: ignore[attr-defined]
        for store in c.stores:  # the documents and the meta collection share one client
            store.client = client  # type: ignore[attr-defined]
    yield c
    await c.close()


@pytest.fixture
async def http_url(core: Knowledge, settings: Settings) -> AsyncIterator[str]:
    """A real uvicorn server on a free port, serving the HTTP front door over ``core``."""
    async with serve_http(core, settings) as url:
        yield url


@pytest.fixture
async def channel(core: Knowledge) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to a real gRPC server (port 0) serving the gRPC front door over ``core``."""
    async with grpc_channel(core) as channel:
        yield channel


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> pb_grpc.KnowledgeServiceStub:
    return pb_grpc.KnowledgeServiceStub(channel)
