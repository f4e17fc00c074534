"""The storage contract: the same behaviour on Edge and on qdrant-client (one suite, both backends)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from knowledge_service.app import Knowledge
from knowledge_service.core.errors import InvalidArgument, NotFound
from knowledge_service.schemas.documents import CountRequest, DeleteRequest, DocumentRef, IngestRequest
from knowledge_service.schemas.search import SearchRequest

DOCS = [
    {
        "id": "cats",
        "title": "Cats",
        "text": "Cats are small domesticated carnivorous mammals that purr.",
        "metadata": {"topic": "animals", "year": 2019, "tags": ["pets", "mammals"]},
    },
    {
        "id": "dogs",
        "title": "Dogs",
        "text": "Dogs are loyal companions descended from wolves.",
        "metadata": {"topic": "animals", "year": 2021, "tags": ["pets"]},
    },
    {
        "id": "stocks",
        "title": "Markets",
        "text": "The stock market fell sharply after the rate decision.",
        "metadata": {"topic": "finance", "year": 2023, "tags": ["economy"]},
    },
]


async def ingest(core: Knowledge, ns: str, docs: list[dict]) -> list[str]:
    resp = await core.documents.ingest(IngestRequest(namespace=ns, documents=docs))
    return [r.status for r in resp.results]


async def search(core: Knowledge, ns: str, query: str, **kw) -> list[str]:
    resp = await core.searcher.search(SearchRequest(namespace=ns, query=query, **kw))
    return [h.doc_id for h in resp.results]


async def test_ingest_statuses_and_search(any_core: Knowledge) -> None:
    assert await ingest(any_core, "kb", DOCS) == ["created"] * 3
    assert (await search(any_core, "kb", "feline pets that purr"))[0] == "cats"
    assert (await search(any_core, "kb", "stock market", mode="sparse"))[0] == "stocks"
    assert (await search(any_core, "kb", "canine companions", mode="dense"))[0] == "dogs"
    assert (await search(any_core, "kb", "wolves", fusion={"method": "dbsf"}))[0] == "dogs"
    assert await ingest(any_core, "kb", DOCS) == ["unchanged"] * 3
    changed = {**DOCS[0], "text": "Cats sleep sixteen hours a day."}
    assert await ingest(any_core, "kb", [changed]) == ["updated"]
    resp = await any_core.searcher.search(SearchRequest(namespace="kb", query="cats sleep"))
    cat_texts = [h.text for h in resp.results if h.doc_id == "cats"]
    assert cat_texts == ["Cats sleep sixteen hours a day."]


async def test_namespaces_are_isolated_including_bm25_statistics(any_core: Knowledge) -> None:
    await ingest(any_core, "a", DOCS)
    await ingest(any_core, "b", [{"id": "b1", "text": "Zebras are striped animals of Africa."}])
    assert await search(any_core, "b", "cats purr") == ["b1"]
    assert "b1" not in await search(any_core, "a", "zebras striped")

    before = await any_core.searcher.search(SearchRequest(namespace="a", query="market", mode="sparse"))
    # Flood another namespace with the query term: namespace a's IDF must not move.
    await ingest(any_core, "c", [{"id": f"m{i}", "text": f"market report {i}"} for i in range(30)])
    after = await any_core.searcher.search(SearchRequest(namespace="a", query="market", mode="sparse"))
    assert [h.doc_id for h in after.results] == ["stocks"]
    assert after.results[0].score == pytest.approx(before.results[0].score, rel=1e-6)


async def test_filters(any_core: Knowledge) -> None:
    await ingest(any_core, "kb", DOCS)
    q = "animals and markets"
    assert set(await search(any_core, "kb", q, filter={"field": "topic", "eq": "finance"})) == {"stocks"}
    assert set(await search(any_core, "kb", q, filter={"field": "tags", "any": ["pets"]})) == {"cats", "dogs"}
    assert set(await search(any_core, "kb", q, filter={"field": "year", "range": {"gte": 2020}})) == {
        "dogs",
        "stocks",
    }
    both = {"and": [{"field": "topic", "eq": "animals"}, {"not": {"field": "year", "eq": 2019}}]}
    assert set(await search(any_core, "kb", q, filter=both)) == {"dogs"}
    either = {"or": [{"field": "year", "eq": 2019}, {"field": "topic", "eq": "finance"}]}
    assert set(await search(any_core, "kb", q, filter=either)) == {"cats", "stocks"}


async def test_delete_get_count_and_index_version(any_core: Knowledge) -> None:
    v0 = (await any_core.documents.count(CountRequest(namespace="kb"))).index_version
    await ingest(any_core, "kb", DOCS)
    counted = await any_core.documents.count(CountRequest(namespace="kb"))
    assert (counted.documents, counted.chunks) == (3, 3)
    assert counted.index_version > v0
    doc = await any_core.documents.get(DocumentRef(namespace="kb", doc_id="dogs"))
    assert (doc.title, doc.metadata["year"], doc.chunks) == ("Dogs", 2021, 1)

    await ingest(any_core, "kb", DOCS)  # unchanged: the version must not move
    assert (
        await any_core.documents.count(CountRequest(namespace="kb"))
    ).index_version == counted.index_version

    gone = await any_core.documents.delete(DeleteRequest(namespace="kb", ids=["dogs", "nope"]))
    assert gone.deleted == 1 and gone.index_version > counted.index_version
    with pytest.raises(NotFound, match="dogs"):
        await any_core.documents.get(DocumentRef(namespace="kb", doc_id="dogs"))
    by_filter = await any_core.documents.delete(
        DeleteRequest(namespace="kb", filter={"field": "topic", "eq": "finance"})
    )
    assert by_filter.deleted == 1
    left = await any_core.documents.count(CountRequest(namespace="kb"))
    assert (left.documents, left.chunks) == (1, 1)
    assert await search(any_core, "kb", "dogs wolves stock market") == ["cats"]


async def test_one_bad_document_fails_alone(any_core: Knowledge) -> None:
    resp = await any_core.documents.ingest(
        IngestRequest(
            namespace="kb",
            documents=[
                DOCS[0],
                {"id": "bad", "text": "x" * 10, "metadata": {"bad key": 1}},
                {"id": "", "text": "y"},
                {**DOCS[1], "id": "cats"},
            ],
        )
    )
    by_status = [(r.id, r.status) for r in resp.results]
    assert by_status == [("cats", "created"), ("bad", "failed"), ("", "failed"), ("cats", "failed")]
    assert "documents[1].metadata" in resp.results[1].error
    assert "documents[2].id" in resp.results[2].error
    assert "earlier in this batch" in resp.results[3].error
    with pytest.raises(InvalidArgument, match="documents"):
        await any_core.documents.ingest(IngestRequest(namespace="kb", documents=[{"id": "x", "text": " "}]))
    assert await search(any_core, "kb", "anything at all") == ["cats"]


async def test_long_document_is_chunked_with_overlap(any_core: Knowledge) -> None:
    sentences = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(120)]
    resp = await any_core.documents.ingest(
        IngestRequest(namespace="kb", documents=[{"id": "long", "text": " ".join(sentences)}])
    )
    n = resp.results[0].chunks
    assert n > 3
    out = await any_core.searcher.search(
        SearchRequest(namespace="kb", query="Sentence number 77", top_k=n, candidates=n)
    )
    ids = sorted(h.chunk_id for h in out.results)
    assert ids == sorted(f"long#{i}" for i in range(n))
    texts = {h.chunk_id: h.text for h in out.results}
    tail = texts["long#0"].split()[-3:]  # the end of one chunk starts the next one
    assert " ".join(tail) in texts["long#1"]


async def test_replacement_is_never_half_visible(any_core: Knowledge) -> None:
    """While a document is rewritten again and again, every search sees exactly one version."""
    versions = [
        f"Version {v} of the handbook. "
        + " ".join(f"Rule {v}.{i}: always write tests for retrieval code." for i in range(30))
        for v in range(6)
    ]
    await ingest(any_core, "kb", [{"id": "hb", "text": versions[0]}])
    stop = asyncio.Event()
    seen: list[set[str]] = []

    async def reader() -> None:
        while not stop.is_set():
            resp = await any_core.searcher.search(
                SearchRequest(
                    namespace="kb", query="handbook rules for tests", top_k=50, candidates=50, rerank=False
                )
            )
            seen.append(
                {h.text.split(" of the handbook")[0] for h in resp.results if "Version" in h.text}
                | ({"<none>"} if not resp.results else set())
            )
            await asyncio.sleep(0)  # as a client waits on its network: a cached answer never suspends

    readers = [asyncio.create_task(reader()) for _ in range(3)]
    for text in versions[1:]:
        assert await ingest(any_core, "kb", [{"id": "hb", "text": text}]) == ["updated"]
    stop.set()
    await asyncio.gather(*readers)
    assert len(seen) > 5
    # Each response holds chunks of one version only, and never none.
    assert all(len(s) == 1 and "<none>" not in s for s in seen), seen
    count = await any_core.documents.count(CountRequest(namespace="kb"))
    assert count.documents == 1


async def test_a_replacement_between_a_searchs_query_and_its_record_read_hides_nothing(
    any_core: Knowledge,
) -> None:
    """The interleaving test_replacement_is_never_half_visible meets only by chance, made certain:
    the engine query runs before a replacement, the read of the live records after it."""
    await ingest(any_core, "kb", [{"id": "hb", "text": "Version 0 of the handbook: write tests."}])
    run, query = any_core.runner.run, any_core.stores[0].query_many
    queried, replaced = asyncio.Event(), asyncio.Event()

    async def pause_after_the_query(fn: Any, *args: Any) -> Any:
        out = await run(fn, *args)
        if fn == query and not queried.is_set():
            queried.set()
            await replaced.wait()
        return out

    any_core.runner.run = pause_after_the_query  # type: ignore[method-assign]
    searching = asyncio.create_task(
        any_core.searcher.search(SearchRequest(namespace="kb", query="handbook tests", rerank=False))
    )
    await asyncio.wait_for(queried.wait(), timeout=30)
    assert await ingest(any_core, "kb", [{"id": "hb", "text": "Version 1 of the handbook: test."}]) == [
        "updated"
    ]
    replaced.set()
    resp = await searching
    assert [h.text.split(" of the handbook")[0] for h in resp.results] in (["Version 0"], ["Version 1"])


async def test_rrf_leg_weights_decide_between_the_legs(any_core: Knowledge) -> None:
    # "lexical" wins the sparse leg (rare exact term), "semantic" wins the dense leg (paraphrase).
    await ingest(
        any_core,
        "kb",
        [
            {"id": "lexical", "text": "Pallet zq7 barcode inventory sheet."},
            {
                "id": "semantic",
                "text": "Steps to recover account access when you cannot remember your login credentials.",
            },
        ],
    )
    q = "how do I reset my forgotten password zq7"
    dense = await search(any_core, "kb", q, mode="dense")
    sparse = await search(any_core, "kb", q, mode="sparse")
    assert sparse[0] == "lexical" and dense[0] == "semantic", (dense, sparse)
    favour_dense = await search(any_core, "kb", q, fusion={"method": "rrf", "k": 1, "weights": [10.0, 0.1]})
    favour_sparse = await search(any_core, "kb", q, fusion={"method": "rrf", "k": 1, "weights": [0.1, 10.0]})
    assert favour_dense[0] == dense[0] and favour_sparse[0] == sparse[0]


async def test_two_replicas_reingesting_one_document_leave_one_whole_version(
    any_core: Knowledge, dense_encoder
) -> None:
    a = any_core
    b = await Knowledge.open(a.settings, dense=dense_encoder, stores=a.stores)
    try:

        def text(tag: str, n: int) -> str:
            return " ".join(f"Version {tag} sentence {i} about the replica race." for i in range(n))

        await ingest(a, "kb", [{"id": "doc", "text": text("zero", 10)}])
        for round_ in range(3):
            ta, tb = text(f"A{round_}", 60), text(f"B{round_}", 25)  # different chunk counts
            ra, rb = await asyncio.gather(
                a.documents.ingest(IngestRequest(namespace="kb", documents=[{"id": "doc", "text": ta}])),
                b.documents.ingest(IngestRequest(namespace="kb", documents=[{"id": "doc", "text": tb}])),
            )
            assert {ra.results[0].status, rb.results[0].status} <= {"updated", "failed"}
            doc = await a.documents.get(DocumentRef(namespace="kb", doc_id="doc"))
            assert doc.text in (ta, tb)
            tag = f"A{round_}" if doc.text == ta else f"B{round_}"
            counted = await a.documents.count(CountRequest(namespace="kb"))
            assert (counted.documents, counted.chunks) == (1, doc.chunks)  # no orphans left
            hits = await a.searcher.search(
                SearchRequest(namespace="kb", query="replica race", top_k=100, candidates=100, rerank=False)
            )
            assert len(hits.results) == doc.chunks
            assert all(f"Version {tag} " in h.text for h in hits.results)
    finally:
        await b.close()


async def test_an_ingest_that_loses_the_flip_to_another_replica_leaves_no_trace(
    any_core: Knowledge, dense_encoder
) -> None:
    a = any_core
    b = await Knowledge.open(a.settings, dense=dense_encoder, stores=a.stores)
    try:
        await ingest(a, "kb", [{"id": "doc", "text": "The first version."}])
        theirs = " ".join(f"Replica B wrote sentence {i}." for i in range(40))
        run_store = a.runner.run

        async def flip_after_b(fn, *args):  # B's ingest lands between A's read and A's flip
            if fn == a.stores[0].swap_doc:
                a.runner.run = run_store
                await b.documents.ingest(
                    IngestRequest(namespace="kb", documents=[{"id": "doc", "text": theirs}])
                )
            return await run_store(fn, *args)

        a.runner.run = flip_after_b  # type: ignore[method-assign]
        mine = await a.documents.ingest(
            IngestRequest(namespace="kb", documents=[{"id": "doc", "text": "A's version."}])
        )
        assert mine.results[0].status == "failed" and "concurrent" in mine.results[0].error
        doc = await a.documents.get(DocumentRef(namespace="kb", doc_id="doc"))
        assert doc.text == theirs
        counted = await a.documents.count(CountRequest(namespace="kb"))
        assert counted.chunks == doc.chunks  # A's chunks were removed, B's old ones too
        hits = await a.searcher.search(
            SearchRequest(namespace="kb", query="A's version", top_k=50, candidates=50)
        )
        assert all("Replica B" in h.text for h in hits.results)
    finally:
        await b.close()
