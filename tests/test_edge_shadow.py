"""Edge index optimisation on a copy in a child process: writes that land meanwhile are all in the
shard swapped in, a restart opens that shard, and an optimisation given up (writes outran it, the
store closed, the process was killed) loses nothing and leaves no copy behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from harness import opened, wait_until
from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.models.base import DenseModel
from knowledge_service.schemas.documents import CountRequest, DeleteRequest, IngestRequest
from knowledge_service.schemas.search import SearchRequest
from knowledge_service.storage import shadow
from knowledge_service.storage.edge import EdgeStore
from knowledge_service.storage.points import ChunkPoint

DIM = 8


def docs(prefix: str, n: int) -> list[dict[str, str]]:
    return [{"id": f"{prefix}{i}", "text": f"{prefix} note {i} on shadow copies and swaps"} for i in range(n)]


def shard_dirs(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.edge_path.iterdir() if p.is_dir() and "_meta" not in p.name)


def while_optimising(monkeypatch: pytest.MonkeyPatch, act: Any) -> list[Path]:
    """Run ``act(copy_path)`` in the optimising thread just before the real child starts."""
    real_run = shadow.OptimiseChild.run
    copies: list[Path] = []

    def run(self: shadow.OptimiseChild, path: Path) -> bool:
        copies.append(path)
        act(path)
        return real_run(self, path)

    monkeypatch.setattr(shadow.OptimiseChild, "run", run)
    return copies


async def test_writes_while_a_copy_is_optimised_are_in_the_shard_swapped_in(
    settings: Settings, dense_encoder: DenseModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with opened(settings, dense=dense_encoder) as core:
        store = core.stores[0]
        assert isinstance(store, EdgeStore)
        await core.documents.ingest(IngestRequest(namespace="kb", documents=docs("old", 30)))
        first = store.path
        loop = asyncio.get_running_loop()

        def writes_meanwhile(_: Path) -> None:
            async def write() -> None:
                await core.documents.ingest(IngestRequest(namespace="kb", documents=docs("new", 10)))
                replaced = [{"id": "old3", "text": "old3 rewritten while the copy was optimised"}]
                await core.documents.ingest(IngestRequest(namespace="kb", documents=replaced))
                await core.documents.delete(DeleteRequest(namespace="kb", ids=["old4", "old5"]))

            asyncio.run_coroutine_threadsafe(write(), loop).result(timeout=120)

        copies = while_optimising(monkeypatch, writes_meanwhile)
        assert await asyncio.to_thread(store._shard.optimise) is True
        assert store.path == copies[0] != first
        assert shard_dirs(settings) == [copies[0].name]  # the old shard is closed and gone
        assert (store.shard.info().indexed_vectors_count or 0) > 0

        async def state(c: Knowledge) -> tuple[int, list[str], str]:
            count = (await c.documents.count(CountRequest(namespace="kb"))).documents
            new = await c.searcher.search(SearchRequest(namespace="kb", query="new note 7", top_k=3))
            old3 = await c.searcher.search(SearchRequest(namespace="kb", query="old3 rewritten", top_k=1))
            return count, [r.doc_id for r in new.results], old3.results[0].text

        count, new_ids, old3_text = await state(core)
        assert count == 30 + 10 - 2
        assert "new7" in new_ids and "rewritten" in old3_text
        # a write after the swap lands in the new shard
        await core.documents.delete(DeleteRequest(namespace="kb", ids=["new0"]))

    async with opened(settings, dense=dense_encoder) as core:  # a restart opens the swapped-in shard
        assert core.stores[0].path == copies[0]
        count, new_ids, old3_text = await state(core)
        assert count == 30 + 10 - 3 and "new7" in new_ids and "rewritten" in old3_text


def chunk(i: int) -> ChunkPoint:
    vector = [float((i * 7 + j) % 5 + 1) for j in range(DIM)]
    payload = {"kind": "chunk", "namespace": "kb", "doc_id": f"d{i}", "generation": 1, "text": f"t{i}"}
    return ChunkPoint(str(uuid.UUID(int=i + 1)), vector, [i % 50], [1.0], payload)


def count_chunks(store: EdgeStore) -> int:
    return store._count(store.f.scope("kb", "chunk"))


def test_writes_that_outrun_the_journal_drop_the_copy_until_a_later_quiet_spell(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EdgeStore(settings, dim=DIM, model="m")
    try:
        store._idle_s, store._min_points = 1e-9, 1
        store.upsert_chunks([chunk(i) for i in range(20)])
        first = store.path
        monkeypatch.setattr(shadow, "JOURNAL_POINTS", 5)
        batches = iter([range(20, 30), range(30, 40)])  # landing during the first try, then the second
        while_optimising(monkeypatch, lambda _: store.upsert_chunks([chunk(i) for i in next(batches)]))
        store._last_write = 0.0  # quiet now
        assert store.maintain() is False  # ten points landed meanwhile: more than the journal keeps
        assert store.path == first and shard_dirs(settings) == [first.name]
        assert count_chunks(store) == 30
        assert store._unoptimised == 30  # still due
        monkeypatch.setattr(shadow, "JOURNAL_POINTS", 50_000)
        assert store.maintain() is True  # the next quiet spell does it, with the new writes
        assert store.path != first and count_chunks(store) == 40
        assert store._unoptimised == 10  # replayed onto the copy after it was optimised
    finally:
        store.close()


def test_closing_while_a_copy_is_optimised_ends_the_child_and_keeps_every_write(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EdgeStore(settings, dim=DIM, model="m")
    store.upsert_chunks([chunk(i) for i in range(50)])
    first = store.path
    child = store._shard._child
    closer = threading.Thread(
        target=lambda: (wait_until(lambda: child._proc is not None, timeout=60), store.close())
    )
    while_optimising(monkeypatch, lambda _: closer.start())
    assert store._shard.optimise() is False  # the child was ended by close
    closer.join(timeout=60)
    assert not closer.is_alive()
    assert shard_dirs(settings) == [first.name]
    reopened = EdgeStore(settings, dim=DIM, model="m")
    try:
        assert reopened.path == first and count_chunks(reopened) == 50
    finally:
        reopened.close()


KILLED = textwrap.dedent("""
    import sys, threading, uuid
    from pathlib import Path
    from knowledge_service.core.config import Settings
    from knowledge_service.storage import shadow
    from knowledge_service.storage.edge import EdgeStore
    from knowledge_service.storage.points import ChunkPoint

    def chunk(i):
        payload = {"kind": "chunk", "namespace": "kb", "doc_id": f"d{i}", "generation": 1}
        return ChunkPoint(str(uuid.UUID(int=i + 1)), [float(i % 3 + 1)] * 8, [i % 50], [1.0], payload)

    store = EdgeStore(Settings(data_dir=sys.argv[1], optimize_idle_s=0), dim=8, model="m")
    store.upsert_chunks([chunk(i) for i in range(40)])
    real_run = shadow.OptimiseChild.run
    def run(self, path):
        store.upsert_chunks([chunk(i) for i in range(40, 45)])  # journaled, acknowledged
        print("ACK", path, flush=True)
        return real_run(self, path)
    shadow.OptimiseChild.run = run
    store._shard.optimise()  # killed while the child optimises the copy
""")


def test_kill_9_while_a_copy_is_optimised_loses_no_write_and_leaves_no_copy(settings: Settings) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(settings.data_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("ACK"), line
        copy = Path(line.split()[1])
        assert copy.exists()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    store = EdgeStore(settings, dim=DIM, model="m")
    try:
        assert count_chunks(store) == 45
        assert shard_dirs(settings) == [store.path.name] and not copy.exists()
    finally:
        store.close()
    wait_until(lambda: not _optimisers_of(copy), timeout=30)  # the child died with its parent


def _optimisers_of(copy: Path) -> list[int]:
    """Processes still running the optimisation child on ``copy``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(copy).encode() in cmdline:
            found.append(int(pid))
    return found


def test_a_reopened_store_knows_what_an_earlier_process_left_unindexed(settings: Settings) -> None:
    store = EdgeStore(settings, dim=DIM, model="m")
    store.upsert_chunks([chunk(i) for i in range(20)])
    store.close()
    store = EdgeStore(settings, dim=DIM, model="m")
    try:
        assert store._unoptimised == 20  # due without a new write
        store._idle_s, store._min_points = 1e-9, 1
        assert store.maintain() is True and count_chunks(store) == 20
    finally:
        store.close()
