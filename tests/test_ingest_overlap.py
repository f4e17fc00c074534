"""Ingest overlaps its stages: a batch is encoded in groups, each group written while the next is
encoded; a group that cannot be encoded fails alone, and a retry completes the batch."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from faults import Faults
from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.models.base import DenseModel
from knowledge_service.pipelines.documents.ingest import ENCODE_GROUP
from knowledge_service.schemas.documents import CountRequest, IngestRequest

DOCS = [
    {"id": f"d{i}", "text": f"document {i} on overlapping the ingest stages"}
    for i in range(2 * ENCODE_GROUP + 3)
]


class Hooked(DenseModel):
    """The real model; ``on_encode(n)`` runs before the n-th passage batch (from 1)."""

    def __init__(self, model: DenseModel, on_encode: Any) -> None:
        self._model, self.spec, self.dim = model, model.spec, model.dim
        self.backend, self.vectors, self.batch_invariant = model.backend, model.vectors, model.batch_invariant
        self._on_encode, self.calls = on_encode, 0

    def encode(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        self._on_encode(self.calls)
        return self._model.encode(texts)

    def tokenizer(self):  # type: ignore[no-untyped-def]
        return self._model.tokenizer()


async def test_a_group_is_written_while_the_next_is_encoded(
    settings: Settings, dense_encoder: DenseModel
) -> None:
    first_group_written = threading.Event()

    def on_encode(n: int) -> None:
        if n == 2:  # the second group waits until the first group's chunks are in the store
            assert first_group_written.wait(timeout=30), "the first group was not written during the encode"

    core = await Knowledge.open(settings, dense=Hooked(dense_encoder, on_encode))
    try:
        faults = Faults(core)

        async def written() -> None:
            first_group_written.set()

        faults.on("upsert_chunks", after=written)
        resp = await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
        assert [r.status for r in resp.results] == ["created"] * len(DOCS)
        assert (await core.documents.count(CountRequest(namespace="kb"))).documents == len(DOCS)
    finally:
        await core.close()


async def test_a_group_that_cannot_be_encoded_fails_alone_and_a_retry_completes_the_batch(
    settings: Settings, dense_encoder: DenseModel
) -> None:
    failing = [True]

    def on_encode(n: int) -> None:
        if n == 2 and failing[0]:
            raise MemoryError("the model ran out of memory")

    core = await Knowledge.open(settings, dense=Hooked(dense_encoder, on_encode))
    try:
        resp = await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
        statuses = [r.status for r in resp.results]
        assert statuses == ["created"] * ENCODE_GROUP + ["failed"] * (len(DOCS) - ENCODE_GROUP)
        assert "could not be encoded (MemoryError); send it again" in (resp.results[-1].error or "")
        count = await core.documents.count(CountRequest(namespace="kb"))
        assert (count.documents, count.chunks) == (ENCODE_GROUP, ENCODE_GROUP)  # only whole documents
        failing[0] = False
        again = await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
        assert [r.status for r in again.results] == ["unchanged"] * ENCODE_GROUP + ["created"] * (
            len(DOCS) - ENCODE_GROUP
        )
        assert (await core.documents.count(CountRequest(namespace="kb"))).documents == len(DOCS)
    finally:
        await core.close()


async def test_cancelling_an_ingest_mid_batch_leaves_only_whole_documents(
    settings: Settings, dense_encoder: DenseModel
) -> None:
    core = await Knowledge.open(settings, dense=dense_encoder)
    try:
        faults = Faults(core)
        hold = asyncio.Event()
        faults.on("upsert_chunks", after=hold.wait)  # the first group's chunks land, then it waits
        ingesting = asyncio.create_task(core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS)))
        await asyncio.sleep(0.5)
        ingesting.cancel()
        hold.set()
        try:
            await ingesting
        except asyncio.CancelledError:
            pass
        faults.restore()
        count = await core.documents.count(CountRequest(namespace="kb"))
        assert count.documents == count.chunks and count.documents in (0, ENCODE_GROUP)
        again = await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
        assert {r.status for r in again.results} <= {"created", "unchanged"}
        assert (await core.documents.count(CountRequest(namespace="kb"))).documents == len(DOCS)
    finally:
        await core.close()
