"""Every call of both clients, over both transports, against the real service."""

from __future__ import annotations

import re
from typing import Any

import grpc
import pytest

import knowledge_client as kc
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc
from knowledge_service.doors.grpc.server import KnowledgeServicer

from .client_support import NS, Service, blocking

NEW = [
    kc.Document(
        id="bm25",
        title="BM25",
        text="BM25 ranks documents by term frequency.",
        metadata={"team": "search", "year": 1994, "tags": ["ir", "ranking"]},
    ),
    {"id": "blank", "text": "   "},
]


def _round_trip(client: kc.KnowledgeClient) -> None:
    """Ingest, count, search, get, delete and stream through one blocking client."""
    ingested = client.ingest(NS, NEW)
    assert [(r.id, r.status) for r in ingested.results] == [("bm25", "created"), ("blank", "failed")]
    assert ingested.results[0].chunks >= 1 and "text" in (ingested.results[1].error or "")
    assert client.ingest(NS, NEW[:1]).results[0].status == "unchanged"

    count = client.count(NS)
    assert (count.documents, count.index_version) == (4, ingested.index_version)
    assert client.count(NS, filter={"field": "team", "eq": "search"}).documents == 2

    found = client.search(NS, "who do I page when search is slow?", top_k=2)
    assert isinstance(found, kc.SearchResponse) and len(found.results) == 2
    top = found.results[0]
    assert (top.doc_id, top.title, top.chunk_id) == ("oncall", "On-call", "oncall#0")
    assert top.metadata == {"team": "search", "year": 2026} and isinstance(top.metadata["year"], int)
    assert found.rerank == "not_configured" and found.index_version == count.index_version

    again = client.search(NS, "who do I page when search is slow?", top_k=2)
    assert again.cache_hit and [h.chunk_id for h in again.results] == [h.chunk_id for h in found.results]

    explained = client.search(
        NS,
        "term frequency ranking",
        top_k=3,
        candidates=20,
        mode="hybrid",
        explain=True,
        filter={"field": "year", "range": {"lt": 2000}},
        fusion=kc.Fusion(k=10, weights=[1, 0.5]),
    )
    assert [h.doc_id for h in explained.results] == ["bm25"]
    assert explained.results[0].scores.dense_rank == 1 and explained.results[0].scores.fused > 0
    sparse = client.search(NS, "sourdough flour", mode="sparse", fusion={"method": "dbsf"})
    assert sparse.results[0].doc_id == "bread"

    doc = client.get(NS, "bm25")
    assert isinstance(doc, kc.StoredDocument)
    assert (doc.id, doc.title, doc.text) == ("bm25", "BM25", NEW[0].text)
    assert doc.metadata == {"team": "search", "year": 1994, "tags": ["ir", "ranking"]}
    assert doc.chunks >= 1 and re.fullmatch("[0-9a-f]{64}", doc.content_hash) and doc.updated_at > 0

    deleted = client.delete(NS, ["bm25"], filter={"field": "team", "eq": "kitchen"})
    assert deleted.deleted == 2 and deleted.index_version > count.index_version
    with pytest.raises(kc.NotFound) as err:
        client.get(NS, "bm25")
    assert err.value.status == "NOT_FOUND"

    batches = (
        [{"id": f"s{b}-{i}", "text": f"Streamed note {b}.{i} about tides."} for i in range(3)]
        for b in range(2)
    )
    streamed = client.ingest_stream("streamed", batches)
    assert [r.status for r in streamed.results] == ["created"] * 6
    assert client.count("streamed").documents == 6


async def test_blocking_client_covers_every_call(service: Service, transport: str):
    with kc.KnowledgeClient(service.target(transport), transport=transport) as client:
        await blocking(_round_trip, client)


async def test_async_client_covers_every_call(service: Service, transport: str):
    async with kc.AsyncKnowledgeClient(service.target(transport), transport=transport) as client:
        ingested = await client.ingest(NS, NEW)
        assert [r.status for r in ingested.results] == ["created", "failed"]
        assert (await client.count(NS)).documents == 4
        found = await client.search(NS, "who do I page when search is slow?", top_k=2, explain=True)
        assert found.results[0].doc_id == "oncall" and found.results[0].scores.dense_rank is not None
        assert (await client.get(NS, "bm25")).title == "BM25"
        assert (await client.delete(NS, "bm25")).deleted == 1
        with pytest.raises(kc.NotFound):
            await client.get(NS, "bm25")

        async def batches() -> Any:
            for b in range(2):
                yield [kc.Document(id=f"a{b}", text=f"Async batch {b} about tides.")]

        streamed = await client.ingest_stream("streamed", batches())
        assert [r.id for r in streamed.results] == ["a0", "a1"]
        assert (await client.count("streamed")).documents == 2


async def test_filters_and_ids_survive_both_transports(service: Service):
    """Same request, same answer: the transports translate identically."""
    answers = []
    for transport in ("grpc", "http"):
        async with kc.AsyncKnowledgeClient(service.target(transport), transport=transport) as client:
            flt = {
                "or": [
                    {"field": "team", "any": ["storage", "kitchen"]},
                    {"not": {"field": "year", "range": {"gte": 2000}}},
                ]
            }
            resp = await client.search(NS, "database", filter=flt, explain=True)
            answers.append(
                [(h.doc_id, h.chunk_id, h.text, h.title, h.metadata, round(h.score, 9)) for h in resp.results]
            )
    assert answers[0] == answers[1] and {a[0] for a in answers[0]} == {"qdrant", "bread"}


async def test_ingest_stream_names_a_bad_batch(service: Service, transport: str):
    client = kc.KnowledgeClient(service.target(transport), transport=transport)
    good = [{"id": "x1", "text": "first batch"}]
    with pytest.raises(kc.InvalidRequest) as err:
        await blocking(client.ingest_stream, NS, [good, [{"id": "x2", "text": "t", "metadata": {1}}]])
    assert err.value.detail.startswith("IngestStream batch 1: ") and "earlier batches" in err.value.detail
    client.close()


async def test_api_key_is_sent_as_bearer_metadata(core: Any):
    """The real servicer behind an interceptor that records what the client sent."""
    seen: list[tuple[str, str]] = []

    class Record(grpc.aio.ServerInterceptor):
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            seen.extend((k, v) for k, v in details.invocation_metadata if k == "authorization")
            return await continuation(details)

    server = grpc.aio.server(interceptors=[Record()])
    pb_grpc.add_KnowledgeServiceServicer_to_server(KnowledgeServicer(core), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        client = kc.KnowledgeClient(f"127.0.0.1:{port}", api_key="s3cret")
        assert (await blocking(client.count, NS)).documents == 0
        async with kc.AsyncKnowledgeClient(f"127.0.0.1:{port}", api_key="s3cret") as aclient:
            await aclient.count(NS)
        client.close()
    finally:
        await server.stop(0)
    assert seen == [("authorization", "Bearer s3cret")] * 2


def _significant(value: Any) -> Any:
    """Without nulls and empty lists: the proto has neither (unset fields are left out)."""
    if isinstance(value, dict):
        return {k: _significant(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [_significant(v) for v in value]
    return value


async def test_both_transports_hand_the_client_the_same_bodies(service: Service):
    """json_format on the gRPC side gives the HTTP API's JSON, so one model path reads both."""
    calls: list[tuple[str, dict[str, Any]]] = [
        ("CountDocuments", {"namespace": NS}),
        ("CountDocuments", {"namespace": NS, "filter": {"field": "year", "range": {"gte": 2021}}}),
        ("GetDocument", {"namespace": NS, "doc_id": "oncall"}),
        ("ListProfiles", {}),
        ("GetProfile", {"name": "default"}),
        ("GetNamespaceSettings", {"namespace": NS}),
        ("Search", {"namespace": NS, "query": "pager rotation", "explain": True, "top_k": 3}),
    ]
    grpc_transport, http_transport = kc.AsyncGrpcTransport(service.grpc), kc.AsyncHttpTransport(service.http)
    try:
        for method, body in calls:
            answers = [await t.call(method, body, timeout=10) for t in (grpc_transport, http_transport)]
            if method == "Search":  # each call has its own timings, and the second is a cache hit
                for answer in answers:
                    del answer["timings_ms"], answer["cache_hit"]
            assert _significant(answers[0]) == _significant(answers[1]), method
            if method == "GetDocument":
                assert answers[0]["metadata"] == {"team": "search", "year": 2026}
                assert type(answers[0]["metadata"]["year"]) is int and type(answers[0]["chunks"]) is int
    finally:
        await grpc_transport.close()
        await http_transport.close()
