"""Dynamic micro-batching (core/batching.py) of query encodes with the real model, and of engine
queries with the real engine: concurrent requests share a pass, each gets its own result, a lone
request never waits for the window, failures reach every caller, a cancelled caller is dropped."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from harness import opened
from knowledge_service.app import Knowledge
from knowledge_service.core.batching import MicroBatcher
from knowledge_service.core.config import Settings
from knowledge_service.core.threads import Worker
from knowledge_service.models.base import DenseModel
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.search import SearchRequest

QUERIES = [f"question {i} about retrieval and topic {i % 5}" for i in range(24)]


class Recording(DenseModel):
    """The real model, recording the batches it is given; ``gate`` holds a batch until set."""

    def __init__(self, model: DenseModel) -> None:
        self._model, self.spec, self.dim = model, model.spec, model.dim
        self.batch_invariant = model.batch_invariant
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.busy = threading.Event()  # set while a batch is inside the model
        self.fail: BaseException | None = None
        self._lock = threading.Lock()
        self.inside = 0  # batches inside the model now, and at most so far
        self.most_inside = 0

    def encode(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.busy.set()
        try:
            self.gate.wait()
            self.batches.append(len(texts))
            if self.fail is not None:
                raise self.fail
            return self._model.encode(texts)
        finally:
            with self._lock:
                self.inside -= 1
                if not self.inside:
                    self.busy.clear()

    def tokenizer(self):  # type: ignore[no-untyped-def]
        return self._model.tokenizer()


@pytest.fixture
def model(torch_encoder: DenseModel) -> Iterator[Recording]:
    recording = Recording(torch_encoder)
    yield recording
    recording.gate.set()  # never leave the model's thread held


class Batcher(MicroBatcher[str, list[float]]):
    """Query encodes batched on a model thread, as the core builds them."""

    def __init__(self, model: DenseModel, *, window_ms: float, max_batch: int, parallel: int = 1) -> None:
        self.worker = Worker("test-model", threads=parallel)
        super().__init__(
            lambda texts: self.worker.run(model.encode, texts),
            max_batch=max_batch,
            window_ms=window_ms,
            parallel=parallel,
        )

    def close(self) -> None:
        self.worker.close()


async def _when(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_concurrent_queries_share_batches_and_each_gets_its_own_vector(
    model: Recording, torch_encoder: DenseModel
) -> None:
    batcher = Batcher(model, window_ms=0, max_batch=32)
    try:
        model.gate.clear()  # the first query holds the model; the rest queue behind it
        first = asyncio.ensure_future(batcher.submit(QUERIES[0]))
        await _when(model.busy.is_set)
        rest = [asyncio.ensure_future(batcher.submit(q)) for q in QUERIES[1:]]
        await _when(lambda: batcher.queued() == len(rest))
        model.gate.set()
        vectors = await asyncio.gather(first, *rest)
    finally:
        model.gate.set()
        batcher.close()
    assert model.batches == [1, len(QUERIES) - 1]
    alone = np.array(torch_encoder.encode(QUERIES[:3]))
    assert np.abs(np.array(vectors[:3]) - alone).max() < 1e-5  # padding in a batch changes nothing


async def test_no_batch_is_larger_than_the_maximum(model: Recording) -> None:
    batcher = Batcher(model, window_ms=0, max_batch=4)
    try:
        model.gate.clear()
        tasks = [asyncio.ensure_future(batcher.submit(q)) for q in QUERIES[:10]]
        await asyncio.sleep(0)  # every task has queued its query
        await _when(model.busy.is_set)
        model.gate.set()
        await asyncio.gather(*tasks)
    finally:
        model.gate.set()
        batcher.close()
    assert sum(model.batches) == 10 and max(model.batches) <= 4 and len(model.batches) >= 3


async def test_a_lone_query_does_not_wait_for_the_window(model: Recording) -> None:
    batcher = Batcher(model, window_ms=5_000, max_batch=32)  # a window no test could sit out
    try:
        for q in QUERIES[:3]:
            started = time.monotonic()
            await batcher.submit(q)
            assert time.monotonic() - started < 2.5  # far below the window: it was not waited for
    finally:
        model.gate.set()
        batcher.close()
    assert model.batches == [1, 1, 1]


async def test_under_load_the_window_gathers_staggered_queries(model: Recording) -> None:
    batcher = Batcher(model, window_ms=300, max_batch=32)
    try:
        await asyncio.gather(*(batcher.submit(q) for q in QUERIES[:2]))  # a batch of 2: under load
        first = asyncio.ensure_future(batcher.submit(QUERIES[2]))
        await asyncio.sleep(0.05)  # arrives within the window the first one opened
        second = asyncio.ensure_future(batcher.submit(QUERIES[3]))
        await asyncio.gather(first, second)
    finally:
        model.gate.set()
        batcher.close()
    assert model.batches[-1] == 2


async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_works(model: Recording) -> None:
    batcher = Batcher(model, window_ms=0, max_batch=32)
    try:
        model.gate.clear()
        tasks = [asyncio.ensure_future(batcher.submit(q)) for q in QUERIES[:5]]
        await asyncio.sleep(0)  # every task has queued its query
        await _when(model.busy.is_set)
        model.fail = RuntimeError("the model ran out of memory")
        model.gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        model.fail = None
        assert len(await batcher.submit("after the failure")) == model.dim
    finally:
        model.gate.set()
        batcher.close()


async def test_a_cancelled_caller_is_dropped_from_its_batch(model: Recording) -> None:
    batcher = Batcher(model, window_ms=0, max_batch=32)
    try:
        model.gate.clear()
        held = asyncio.ensure_future(batcher.submit(QUERIES[0]))
        await _when(model.busy.is_set)
        gone = asyncio.ensure_future(batcher.submit(QUERIES[1]))
        kept = asyncio.ensure_future(batcher.submit(QUERIES[2]))
        await _when(lambda: batcher.queued() == 2)
        gone.cancel()
        model.gate.set()
        await asyncio.gather(held, kept)
    finally:
        model.gate.set()
        batcher.close()
    assert model.batches == [1, 1]  # the cancelled query was never encoded


async def test_unbatchable_queries_run_side_by_side_up_to_the_slots_each_encoded_alone(
    dense_encoder: DenseModel,
) -> None:
    model = Recording(dense_encoder)
    batcher = Batcher(model, window_ms=0, max_batch=1, parallel=2)
    try:
        model.gate.clear()  # hold the model: the first two queries enter it, the rest queue
        tasks = [asyncio.ensure_future(batcher.submit(q)) for q in QUERIES[:6]]
        await _when(lambda: model.inside == 2)
        assert batcher.queued() == 4  # no third slot
        model.gate.set()
        vectors = await asyncio.gather(*tasks)
    finally:
        model.gate.set()
        batcher.close()
    assert model.batches == [1] * 6 and model.most_inside == 2
    alone = [dense_encoder.encode([q])[0] for q in QUERIES[:6]]
    assert np.abs(np.array(vectors) - np.array(alone)).max() < 1e-6  # side by side changes nothing


@pytest.mark.parametrize("parallel", [1, 2])
async def test_a_query_sent_as_the_last_batch_ends_is_run(model: Recording, parallel: int) -> None:
    batcher = Batcher(model, window_ms=0, max_batch=1, parallel=parallel)

    async def one_after_another() -> None:  # each query is sent the moment the one before is answered
        for q in QUERIES[:5]:
            await batcher.submit(q)

    try:
        await asyncio.wait_for(asyncio.gather(*(one_after_another() for _ in range(parallel))), timeout=10)
    finally:
        batcher.close()
    assert len(model.batches) == 5 * parallel


async def test_queries_of_a_model_whose_vectors_depend_on_the_batch_are_encoded_alone(
    settings: Settings, dense_encoder: DenseModel, torch_encoder: DenseModel
) -> None:
    import os

    assert not dense_encoder.batch_invariant  # the shipped default: dynamic int8
    cores = len(os.sched_getaffinity(0))
    for model, batch, parallel in ((dense_encoder, 1, cores), (torch_encoder, settings.query_batch_max, 1)):
        async with opened(settings, dense=model) as core:
            assert (core.queries.max_batch, core.queries.parallel) == (batch, parallel)
    async with opened(settings.model_copy(update={"query_encode_parallel": 3}), dense=dense_encoder) as core:
        assert core.queries.parallel == 3  # the operator's setting wins


async def test_concurrent_searches_share_engine_batches_and_get_their_own_answers(
    settings: Settings, torch_encoder: DenseModel
) -> None:
    # A batch-invariant encoder releases concurrent searches together, so their engine queries meet
    # in the engine's batcher whatever the machine's speed. (The default int8 encoder takes queries
    # one at a time, so whether engine queries overlap behind it depends on encode and engine times.)
    async with opened(settings, dense=torch_encoder) as core:
        await _share_engine_batches(core)


async def _share_engine_batches(core: Knowledge) -> None:
    docs = [{"id": f"d{i}", "text": f"topic {i}: notes about subject {i} and its details"} for i in range(30)]
    await core.documents.ingest(IngestRequest(namespace="kb", documents=docs))
    queries = [f"subject {i} details" for i in range(30)]
    alone = [
        [
            h.chunk_id
            for h in (
                await core.searcher.search(SearchRequest(namespace="kb", query=q, explain=True))
            ).results
        ]
        for q in queries
    ]
    batches = core.store._queries.batches
    together = await asyncio.gather(
        *(
            core.searcher.search(SearchRequest(namespace="kb", query=q, top_k=5, explain=True, candidates=99))
            for q in queries
        )
    )
    # 90 engine queries (the fused query and two legs each): the encoder releases the searches in
    # at most two waves (a lone first encode, then the rest), and each wave's queries share batches
    assert core.store._queries.batches - batches <= 6
    assert [[h.chunk_id for h in r.results] for r in together] == [a[:5] for a in alone]
