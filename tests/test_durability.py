"""Acknowledged writes survive `kill -9` of the process that owns the embedded store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.core.errors import StoreBusy
from knowledge_service.models.base import DenseModel
from knowledge_service.schemas.documents import CountRequest, DocumentRef
from knowledge_service.schemas.search import SearchRequest

WRITER = textwrap.dedent("""
    import asyncio, sys, time
    from knowledge_service.core.config import Settings
    from knowledge_service.app import Knowledge
    from knowledge_service.schemas.documents import IngestRequest

    async def main():
        core = await Knowledge.open(Settings(data_dir=sys.argv[1], optimize_idle_s=0))
        resp = await core.documents.ingest(IngestRequest(namespace="kb", documents=[
            {"id": "kept", "text": "This sentence was acknowledged before the crash."}]))
        print("ACK", resp.index_version, flush=True)
        time.sleep(600)  # killed here, store never closed or flushed (the test waits for "ACK")

    asyncio.run(main())
""")


async def test_acknowledged_ingest_survives_kill_9(tmp_path: Path, dense_encoder: DenseModel) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("ACK"), line
        version = int(line.split()[1])
        # While it runs, the store is owned: a second opener gets a clear error.
        settings = Settings(data_dir=data, optimize_idle_s=0)
        try:
            await Knowledge.open(settings, dense=dense_encoder)
            raise AssertionError("a second process opened an owned store")
        except StoreBusy as exc:
            assert "another process" in str(exc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    core = await Knowledge.open(settings, dense=dense_encoder)
    try:
        doc = await core.documents.get(DocumentRef(namespace="kb", doc_id="kept"))
        assert doc.text.startswith("This sentence")
        count = await core.documents.count(CountRequest(namespace="kb"))
        assert (count.documents, count.chunks, count.index_version) == (1, 1, version)
        hits = await core.searcher.search(
            SearchRequest(namespace="kb", query="acknowledged before the crash")
        )
        assert [h.doc_id for h in hits.results] == ["kept"]
    finally:
        await core.close()


TORN_WRITER = textwrap.dedent("""
    import asyncio, sys, time
    from knowledge_service.core.config import Settings
    from knowledge_service.app import Knowledge
    from knowledge_service.schemas.documents import IngestRequest

    async def main():
        core = await Knowledge.open(Settings(data_dir=sys.argv[1], optimize_idle_s=0))
        await core.documents.ingest(IngestRequest(namespace="kb", documents=[
            {"id": "doc", "text": "The first version, acknowledged."}]))
        def die_before_the_flip(record, expected):  # chunks and markers are written by now
            print("TORN", flush=True)
            time.sleep(600)  # parked until the test's SIGKILL (it waits for "TORN", not for time)
        core.stores[0].swap_doc = die_before_the_flip
        text = " ".join(f"Sentence {i} of a second version that never lands." for i in range(60))
        await core.documents.ingest(IngestRequest(namespace="kb", documents=[{"id": "doc", "text": text}]))

    asyncio.run(main())
""")


async def test_kill_9_in_the_middle_of_a_replacement_leaves_one_version_and_sweepable_orphans(
    tmp_path: Path, dense_encoder: DenseModel
) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-c", TORN_WRITER, str(data)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("TORN"), line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    core = await Knowledge.open(Settings(data_dir=data, optimize_idle_s=0), dense=dense_encoder)
    try:
        doc = await core.documents.get(DocumentRef(namespace="kb", doc_id="doc"))
        assert doc.text == "The first version, acknowledged."
        counted = await core.documents.count(CountRequest(namespace="kb"))
        assert (counted.documents, counted.chunks) == (1, 1)  # the torn write is not counted
        every = await core.runner.run(core.stores[0].count, "kb", "chunk")
        assert every > 1  # ...but its chunks are on disk, named by its markers
        core.sweeper.grace_s = 0.0  # the dead writer's markers are past any grace period
        assert await core.sweeper.sweep_markers() == every - 1
        assert await core.runner.run(core.stores[0].count, "kb", "chunk") == 1
        assert await core.runner.run(core.stores[0].count, "kb", "gc") == 0
        hits = await core.searcher.search(SearchRequest(namespace="kb", query="second version sentence"))
        assert [h.text for h in hits.results] == ["The first version, acknowledged."]
    finally:
        await core.close()
