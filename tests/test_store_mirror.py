"""The Edge store's mirror of index versions and live generations: searches read them without
an engine call, a write is seen by the next read, and a read racing a write never keeps a
value the write replaced."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from knowledge_service.app import Knowledge
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.search import SearchRequest
from knowledge_service.storage.edge import EdgeStore
from knowledge_service.storage.mirror import ABSENT, Mirror


class CountingShard:
    """The real shard, counting its point reads."""

    def __init__(self, shard: Any) -> None:
        self._shard, self.retrieves = shard, 0

    def retrieve(self, *args: Any, **kwargs: Any) -> Any:
        self.retrieves += 1
        return self._shard.retrieve(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shard, name)


def count_reads(store: EdgeStore, monkeypatch: pytest.MonkeyPatch) -> CountingShard:
    """Every call the store lends its shard to goes through a counting proxy from now on."""
    live = store._shard
    lend = live.use
    counting = CountingShard(None)

    @contextlib.contextmanager
    def use() -> Iterator[Any]:
        with lend() as shard:
            counting._shard = shard
            yield counting

    monkeypatch.setattr(live, "use", use)
    return counting


def test_a_read_that_a_write_overtakes_is_not_kept() -> None:
    mirror = Mirror(100)

    def load_while_a_write_lands(ids: list[str]) -> dict[str, Any]:
        mirror.invalidate(ids)  # the write lands between the read and the keeping
        return dict.fromkeys(ids, "old")

    assert mirror.read(["a"], load_while_a_write_lands) == {"a": "old"}
    assert mirror.peek(["a"]) is None  # not kept: the next read goes to the store
    assert mirror.read(["a", "b"], lambda ids: {"a": "new"}) == {"a": "new", "b": ABSENT}
    assert mirror.peek(["a", "b"]) == {"a": "new", "b": ABSENT}


async def test_a_search_reads_versions_and_generations_from_the_mirror(
    core: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = core.stores[0]
    assert isinstance(store, EdgeStore)
    docs = [{"id": f"d{i}", "text": f"note {i} on the mirror of records"} for i in range(5)]
    await core.documents.ingest(IngestRequest(namespace="kb", documents=docs))
    await core.searcher.search(SearchRequest(namespace="kb", query="first search"))
    shard = count_reads(store, monkeypatch)
    for i in range(3):
        resp = await core.searcher.search(SearchRequest(namespace="kb", query=f"note {i} records"))
        assert not resp.cache_hit and resp.results
    assert shard.retrieves == 0

    await core.documents.ingest(
        IngestRequest(namespace="kb", documents=[{"id": "d1", "text": "note 1 rewritten: the mirror"}])
    )
    resp = await core.searcher.search(SearchRequest(namespace="kb", query="note 1 rewritten"))
    assert resp.results[0].doc_id == "d1" and "rewritten" in resp.results[0].text
    assert resp.index_version == await core.store.get_index_version("kb") > 0


def test_reads_racing_writes_never_return_a_replaced_generation(core: Knowledge) -> None:
    store = core.stores[0]
    record = {"kind": "doc", "namespace": "kb", "doc_id": "d", "generation": 0}
    store.swap_doc(record, None)
    committed = [0]  # generations whose write has returned, in order
    stop = threading.Event()
    stale: list[tuple[int, int]] = []

    def reader() -> None:
        while not stop.is_set():
            floor = committed[-1]  # written before this read started
            seen = store.live_generations("kb", ["d"])["d"]
            if seen < floor:
                stale.append((seen, floor))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for generation in range(1, 300):
        store.swap_doc({**record, "generation": generation}, generation - 1)
        committed.append(generation)
    stop.set()
    for t in threads:
        t.join()
    assert stale == []
    assert (
        store.live_generations("kb", ["d"])
        == {"d": 299}
        == {"d": store.get_docs("kb", ["d"])["d"]["generation"]}
    )
