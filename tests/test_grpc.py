"""The gRPC front door against a real grpc.aio server on port 0 and the real core."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, json_format, struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from harness import grpc_channel, serve_grpc
from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc
from knowledge_service.core import limits as L
from knowledge_service.core.errors import Overloaded
from knowledge_service.doors.grpc.convert import search_request
from knowledge_service.doors.grpc.server import set_serving
from knowledge_service.ops.auth import KeyRing
from knowledge_service.ops.metrics import Metrics
from knowledge_service.schemas.search import SearchRequest

NS = "grpc-test"
SERVICE = "knowledge.v1.KnowledgeService"
DOCS = [
    ("qdrant", "Qdrant is a vector database written in Rust for similarity search.", 2020, "en"),
    ("bm25", "BM25 ranks documents by term frequency and inverse document frequency.", 1994, "en"),
    ("bread", "Sourdough bread needs flour, water, salt and a lively starter.", 2021, "fr"),
]


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def _dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(struct)


def _doc(doc_id: str, text: str, year: int, lang: str) -> pb.Document:
    meta = {"year": year, "lang": lang, "tags": ["a", "b"]}
    return pb.Document(id=doc_id, text=text, title=doc_id.title(), metadata=_struct(meta))


@pytest.fixture
async def loaded(stub: pb_grpc.KnowledgeServiceStub) -> pb_grpc.KnowledgeServiceStub:
    resp = await stub.Ingest(pb.IngestRequest(namespace=NS, documents=[_doc(*d) for d in DOCS]))
    assert [r.status for r in resp.results] == [pb.INGEST_STATUS_CREATED] * len(DOCS)
    return stub


async def test_ingest_then_search_returns_the_document(loaded: pb_grpc.KnowledgeServiceStub):
    resp = await loaded.Search(pb.SearchRequest(namespace=NS, query="vector database in Rust"))
    assert resp.results[0].doc_id == "qdrant"
    hit = resp.results[0]
    assert hit.title == "Qdrant" and "Rust" in hit.text and hit.chunk_id
    assert _dict(hit.metadata) == {"year": 2020, "lang": "en", "tags": ["a", "b"]}
    assert resp.rerank != pb.RERANK_STATUS_UNSPECIFIED
    assert resp.index_version > 0


async def test_ingest_reports_each_document(stub: pb_grpc.KnowledgeServiceStub):
    docs = [_doc(*DOCS[0]), pb.Document(id="blank", text="   ")]
    resp = await stub.Ingest(pb.IngestRequest(namespace=NS, documents=docs))
    first, bad = resp.results
    assert (first.id, first.status, first.chunks >= 1) == ("qdrant", pb.INGEST_STATUS_CREATED, True)
    assert not first.HasField("error")
    assert (bad.id, bad.status) == ("blank", pb.INGEST_STATUS_FAILED)
    assert "text" in bad.error
    again = await stub.Ingest(pb.IngestRequest(namespace=NS, documents=[_doc(*DOCS[0])]))
    assert again.results[0].status == pb.INGEST_STATUS_UNCHANGED
    changed = pb.Document(id="qdrant", text="Qdrant also offers an embedded engine.")
    updated = await stub.Ingest(pb.IngestRequest(namespace=NS, documents=[changed]))
    assert updated.results[0].status == pb.INGEST_STATUS_UPDATED
    assert updated.index_version > again.index_version


async def test_search_options_and_filters_translate(loaded: pb_grpc.KnowledgeServiceStub):
    year = {"field": "year", "eq": 2020}
    for flt in (year, {"field": "year", "any": [2020, 2030]}, {"field": "lang", "eq": "en"}):
        req = pb.SearchRequest(
            namespace=NS,
            query="search",
            top_k=5,
            candidates=20,
            filter=_struct(flt),
            mode=pb.SEARCH_MODE_HYBRID,
            fusion=pb.Fusion(method=pb.FUSION_METHOD_RRF, k=10, weights=[1.0, 0.5]),
            rerank=False,
            explain=True,
        )
        resp = await loaded.Search(req)
        ids = {h.doc_id for h in resp.results}
        assert all(h.scores.HasField("dense_rank") for h in resp.results if h.doc_id == "qdrant")
        assert ids == ({"qdrant", "bm25"} if flt["field"] == "lang" else {"qdrant"}), flt
    ranged = _struct({"and": [{"field": "year", "range": {"gte": 2000}}, {"not": year}]})
    for mode in (pb.SEARCH_MODE_DENSE, pb.SEARCH_MODE_SPARSE):
        req = pb.SearchRequest(namespace=NS, query="sourdough flour", filter=ranged, mode=mode)
        resp = await loaded.Search(req)
        assert [h.doc_id for h in resp.results] == ["bread"]
    dbsf = pb.Fusion(method=pb.FUSION_METHOD_DBSF)
    resp = await loaded.Search(pb.SearchRequest(namespace=NS, query="bread", fusion=dbsf, top_k=1))
    assert len(resp.results) == 1


async def test_documents_round_trip(loaded: pb_grpc.KnowledgeServiceStub):
    doc = await loaded.GetDocument(pb.GetDocumentRequest(namespace=NS, doc_id="bm25"))
    assert (doc.id, doc.title, doc.text) == ("bm25", "Bm25", DOCS[1][1])
    assert _dict(doc.metadata) == {"year": 1994, "lang": "en", "tags": ["a", "b"]}
    assert doc.chunks >= 1 and doc.content_hash and doc.updated_at > 0
    count = await loaded.CountDocuments(pb.CountDocumentsRequest(namespace=NS))
    assert count.documents == 3 and count.chunks >= 3
    french = _struct({"field": "lang", "eq": "fr"})
    count = await loaded.CountDocuments(pb.CountDocumentsRequest(namespace=NS, filter=french))
    assert count.documents == 1
    deleted = await loaded.DeleteDocuments(
        pb.DeleteDocumentsRequest(namespace=NS, ids=["bm25"], filter=french)
    )
    assert deleted.deleted == 2 and deleted.index_version > count.index_version
    count = await loaded.CountDocuments(pb.CountDocumentsRequest(namespace=NS))
    assert count.documents == 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await loaded.GetDocument(pb.GetDocumentRequest(namespace=NS, doc_id="bm25"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_get_missing_document_is_not_found(stub: pb_grpc.KnowledgeServiceStub):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetDocument(pb.GetDocumentRequest(namespace=NS, doc_id="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_ingest_stream_concatenates_results(stub: pb_grpc.KnowledgeServiceStub):
    batches = [pb.IngestRequest(namespace=NS, documents=[_doc(*d)]) for d in DOCS[:2]]
    resp = await stub.IngestStream(iter(batches))
    assert [(r.id, r.status) for r in resp.results] == [
        ("qdrant", pb.INGEST_STATUS_CREATED),
        ("bm25", pb.INGEST_STATUS_CREATED),
    ]
    count = await stub.CountDocuments(pb.CountDocumentsRequest(namespace=NS))
    assert (count.documents, count.index_version) == (2, resp.index_version)


def test_unset_optional_fields_take_model_defaults():
    assert search_request(pb.SearchRequest(namespace=NS, query="q")) == SearchRequest(namespace=NS, query="q")
    full = pb.SearchRequest(
        namespace=NS,
        query=" q ",
        top_k=3,
        candidates=7,
        rerank=False,
        explain=True,
        mode=pb.SEARCH_MODE_SPARSE,
        filter=_struct({"or": [{"field": "n", "eq": 1}, {"field": "t", "any": ["x"]}]}),
        fusion=pb.Fusion(method=pb.FUSION_METHOD_DBSF, k=5, weights=[2, 1]),
    )
    assert search_request(full).model_dump() == {
        "namespace": NS,
        "query": "q",
        "top_k": 3,
        "candidates": 7,
        "rerank": False,
        "explain": True,
        "mode": "sparse",
        "filter": {"or": [{"field": "n", "eq": 1}, {"field": "t", "any": ["x"]}]},
        "fusion": {"method": "dbsf", "k": 5, "weights": [2.0, 1.0]},
        "profile": None,
        "overrides": None,
    }
    assert isinstance(search_request(full).filter["or"][0]["eq"], int)


def _search(**fields: Any) -> tuple[str, Any]:
    return "Search", pb.SearchRequest(**{"namespace": NS, "query": "rust", **fields})


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (_search(query=""), "query"),
        (_search(query=" \t "), "query"),
        (_search(top_k=1000), "top_k"),
        (_search(namespace="a b"), "namespace"),
        (_search(filter=_struct({"field": "year", "gt": 1})), "filter"),
        (_search(filter=_struct({"field": "year", "eq": 20.5})), "filter.eq"),
        (_search(fusion=pb.Fusion(weights=[1.0])), "fusion.weights"),
        (_search(mode=42), "mode"),
        (("Ingest", pb.IngestRequest(namespace=NS)), "documents"),
        (("CountDocuments", pb.CountDocumentsRequest(namespace="a b")), "namespace"),
        (("DeleteDocuments", pb.DeleteDocumentsRequest(namespace=NS)), "ids"),
        (("GetDocument", pb.GetDocumentRequest(namespace=NS)), "doc_id"),
    ],
)
async def test_bad_input_is_invalid_argument(
    stub: pb_grpc.KnowledgeServiceStub, call: tuple[str, Any], field: str
):
    method, request = call
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await getattr(stub, method)(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in err.value.details()


async def test_ingest_stream_errors_name_the_message(stub: pb_grpc.KnowledgeServiceStub):
    good = pb.IngestRequest(namespace=NS, documents=[_doc(*DOCS[0])])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.IngestStream(iter([good, pb.IngestRequest(namespace="a b")]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("IngestStream message 1: namespace")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.IngestStream(iter([]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_health_is_serving(channel: grpc.aio.Channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE):
        resp = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_follows_set_serving():
    async with serve_grpc(_BrokenCore()) as serving, serving.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        resp = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        await set_serving(serving.server, False)
        resp = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert resp.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_reflection_lists_the_service(channel: grpc.aio.Channel):
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE),
    ]
    listed, found = [resp async for resp in reflect.ServerReflectionInfo(iter(requests))]
    assert SERVICE in {s.name for s in listed.list_services_response.service}
    files = [  # the file defining the symbol, with the files it imports
        descriptor_pb2.FileDescriptorProto.FromString(proto)
        for proto in found.file_descriptor_response.file_descriptor_proto
    ]
    services = {f"{f.package}.{s.name}": [m.name for m in s.method] for f in files for s in f.service}
    assert {"Search", "Ingest", "IngestStream", "CountDocuments"} <= set(services[SERVICE])


class _BrokenSearcher:
    async def search(self, req: Any, deadline: float | None = None) -> Any:
        raise Overloaded("too many searches in flight; retry", retry_after_s=0.25)


class _BrokenDocuments:
    async def count(self, req: Any) -> Any:
        raise RuntimeError("secret stack detail")


class _BrokenCore:
    """Raises from every call: a domain error for search, a bug for everything else."""

    keys = KeyRing([], required=False)
    metrics = Metrics()
    searcher = _BrokenSearcher()
    documents = _BrokenDocuments()


async def test_errors_map_to_codes_and_hide_internals(caplog: pytest.LogCaptureFixture):
    async with grpc_channel(_BrokenCore()) as channel:
        stub = pb_grpc.KnowledgeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Search(pb.SearchRequest(namespace=NS, query="q"))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert err.value.details() == "too many searches in flight; retry"
        assert ("retry-after-ms", "250") in tuple(err.value.trailing_metadata())
        with caplog.at_level(logging.ERROR, logger="knowledge_service.doors.grpc.guard"):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.CountDocuments(pb.CountDocumentsRequest(namespace=NS))
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert err.value.details() == "internal error"
        assert "secret stack detail" in caplog.text


async def test_a_message_over_its_operation_cap_is_refused_unread(stub: pb_grpc.KnowledgeServiceStub):
    """As on HTTP, a small call's cap (1 MiB) holds on gRPC too, before the message is parsed."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Search(pb.SearchRequest(namespace="kb", query="x" * (L.MAX_SMALL_BODY_BYTES + 1)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "over the 1048576-byte cap for Search; send less per request" in err.value.details()
    resp = await stub.Search(pb.SearchRequest(namespace="kb", query="x" * 1000))  # within it: served
    assert resp.profile == "default"
