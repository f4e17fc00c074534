"""What HTTP offered first, on gRPC too (real servers over one core): file uploads, evaluations and
the uploaded require_eval gate, each answered as HTTP answers it; and the schemas and the proto
naming the same fields, which is what lets the gRPC door translate without per-field code."""

from __future__ import annotations

import math
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format, struct_pb2
from pydantic import BaseModel

from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc
from knowledge_service.app import Knowledge
from knowledge_service.core import limits as L
from knowledge_service.doors.grpc.convert import to_message, to_model
from knowledge_service.pipelines.evaluation.comparison import Comparison, ProfileResult, QueryDelta
from knowledge_service.schemas import documents as d
from knowledge_service.schemas import evaluations as e
from knowledge_service.schemas import profiles as p
from knowledge_service.schemas import search as s

Stub = pb_grpc.KnowledgeServiceStub
NS = "kb"
MARKDOWN = b"---\nteam: search\n---\n# Intro\n\nHybrid search fuses BM25 and vectors."
HTML = b"<html><title>Page</title><body><p>Rerankers reorder.</p><script>nope()</script></body></html>"
GARBAGE = b"\x00\xff\xfe\x00garbage"
DOCS = [{"id": f"d{i}", "text": f"Note {i} covers subject {i % 3} of the runbook."} for i in range(9)]
QUERIES = {f"q{i}": f"subject {i} of the runbook" for i in range(3)}
QRELS = {f"q{i}": {f"d{j}": 1 for j in range(9) if j % 3 == i} for i in range(3)}


@pytest.fixture
async def http(http_url: str):
    async with httpx.AsyncClient(base_url=http_url, timeout=120) as client:
        yield client


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def _judged(qrels: dict[str, dict[str, int]]) -> dict[str, pb.Judgments]:
    return {q: pb.Judgments(grades=grades) for q, grades in qrels.items()}


async def _count(stub: Stub, namespace: str = NS) -> int:
    return (await stub.CountDocuments(pb.CountDocumentsRequest(namespace=namespace))).documents


# ----------------------------------------------------------------------------- IngestFiles


async def test_ingest_files_then_search_finds_them(stub: Stub) -> None:
    files = [
        pb.UploadedFile(filename="notes/intro.md", data=MARKDOWN),
        pb.UploadedFile(filename="page", content_type="text/html", data=HTML, id="the-page"),
    ]
    req = pb.IngestFilesRequest(namespace=NS, files=files, metadata=_struct({"src": "up", "year": 2024}))
    resp = await stub.IngestFiles(req)
    assert [(r.id, r.status) for r in resp.results] == [
        ("notes/intro.md", pb.INGEST_STATUS_CREATED),
        ("the-page", pb.INGEST_STATUS_CREATED),
    ]
    intro = await stub.GetDocument(pb.GetDocumentRequest(namespace=NS, doc_id="notes/intro.md"))
    meta = json_format.MessageToDict(intro.metadata)
    assert intro.title == "Intro" and meta["team"] == "search" and meta["format"] == "markdown"
    page = await stub.GetDocument(pb.GetDocumentRequest(namespace=NS, doc_id="the-page"))
    assert page.title == "Page" and "nope" not in page.text
    assert json_format.MessageToDict(page.metadata)["src"] == "up"
    for query, doc_id in [("hybrid search fuses BM25", "notes/intro.md"), ("rerankers reorder", "the-page")]:
        found = await stub.Search(pb.SearchRequest(namespace=NS, query=query, top_k=1))
        assert [h.doc_id for h in found.results] == [doc_id], query


async def test_files_over_a_limit_are_refused_before_parsing(
    stub: Stub,
    core: Knowledge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_parse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a refused request reached the parsers")

    monkeypatch.setattr(core.parsers, "parse", no_parse)
    big = pb.UploadedFile(filename="big.txt", data=b"x" * (L.MAX_FILE_BYTES + 1))
    small = pb.UploadedFile(filename="small.txt", data=b"fine")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.IngestFiles(pb.IngestFilesRequest(namespace=NS, files=[small, big]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "MAX_FILE_BYTES" in err.value.details() and "files[1] (big.txt)" in err.value.details()
    many = [pb.UploadedFile(filename=f"{i}.txt", data=b"t") for i in range(L.MAX_FILES_PER_REQUEST + 1)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.IngestFiles(pb.IngestFilesRequest(namespace=NS, files=many))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "MAX_FILES_PER_REQUEST" in err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.IngestFiles(pb.IngestFilesRequest(namespace=NS))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "files" in err.value.details()
    # The whole request is one message, capped as HTTP caps the body (every file under its limit).
    part = b"x" * (L.MAX_FILE_BYTES - 1)
    over = [
        pb.UploadedFile(filename=f"{i}.txt", data=part) for i in range(L.MAX_REQUEST_BYTES // len(part) + 1)
    ]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.IngestFiles(pb.IngestFilesRequest(namespace=NS, files=over))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await _count(stub) == 0


async def test_a_file_that_cannot_be_parsed_refuses_the_request_as_on_http(
    stub: Stub,
    http: httpx.AsyncClient,
) -> None:
    r = await http.post(
        "/v1/namespaces/kb/files",
        files=[("files", ("intro.md", MARKDOWN, None)), ("files", ("x.bin", GARBAGE, None))],
    )
    assert r.status_code == 422, r.text
    files = [
        pb.UploadedFile(filename="intro.md", data=MARKDOWN),
        pb.UploadedFile(filename="x.bin", data=GARBAGE),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.IngestFiles(pb.IngestFilesRequest(namespace=NS, files=files))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == r.json()["error"]["message"]
    assert "files[1] (x.bin)" in err.value.details()
    assert await _count(stub) == 0  # the good file was not ingested either, on either door


# ----------------------------------------------------------------------------- evaluations


def _numbers(comparison: dict[str, Any]) -> dict[str, Any]:
    """A comparison without its timings (which differ between two runs)."""
    keep = ("name", "version", "metrics", "queries", "missing")
    profiles = [{k: prof.get(k) for k in keep} for prof in comparison["profiles"]]
    rest = ("metric_keys", "permutations", "seed", "delta", "p_value", "wins", "losses", "ties", "per_query")
    return {"profiles": profiles, **{k: comparison.get(k) for k in rest}}


async def test_evaluate_gives_the_numbers_http_gives(
    stub: Stub,
    http: httpx.AsyncClient,
    core: Knowledge,
) -> None:
    await core.documents.ingest(d.IngestRequest(namespace=NS, documents=DOCS))
    body = {
        "namespace": NS,
        "queries": QUERIES,
        "qrels": QRELS,
        "profiles": [{"name": "default"}, {"settings": {"mode": "dense"}, "label": "dense"}],
    }
    r = await http.post("/v1/evaluations", json=body)
    assert r.status_code == 200, r.text
    want = _numbers(r.json())
    req = pb.EvaluateRequest(
        namespace=NS,
        queries=QUERIES,
        qrels=_judged(QRELS),
        profiles=[
            pb.ProfileSpec(name="default"),
            pb.ProfileSpec(settings=pb.RetrievalSettings(mode=pb.SEARCH_MODE_DENSE), label="dense"),
        ],
    )
    got = await stub.Evaluate(req)
    assert got.profiles[0].HasField("version") and not got.profiles[1].HasField("version")
    assert got.profiles[0].latency.HasField("p50_ms") and len(got.profiles[0].latencies_ms) == 3
    seen = json_format.MessageToDict(
        got, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    seen["seed"] = int(seen["seed"])
    seen["profiles"][0]["version"] = int(seen["profiles"][0]["version"])
    assert _numbers(seen) == want
    assert set(want["delta"]) == {"ndcg@10", "recall@100", "mrr@10"}
    # Both profiles return all nine notes (top_k 10), so each finds every judged note.
    assert [prof["metrics"]["recall@100"] for prof in want["profiles"]] == [1.0, 1.0]
    assert want["delta"]["recall@100"] == 0
    assert sorted(q["query_id"] for q in want["per_query"]) == sorted(QUERIES)

    with pytest.raises(grpc.aio.AioRpcError) as err:  # no query set: as HTTP says
        await stub.Evaluate(pb.EvaluateRequest(namespace=NS, profiles=[pb.ProfileSpec(name="default")]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "dataset" in err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Evaluate(pb.EvaluateRequest(namespace=NS, queries=QUERIES, qrels=_judged(QRELS), depth=5))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "depth" in err.value.details() and "profiles" in err.value.details()


async def test_uploaded_require_eval_gates_put_profile_as_on_http(
    stub: Stub,
    http: httpx.AsyncClient,
    core: Knowledge,
) -> None:
    await core.documents.ingest(d.IngestRequest(namespace=NS, documents=DOCS))
    gate = {"queries": QUERIES, "qrels": QRELS, "namespace": NS, "min_delta": 0.01}
    r = await http.put(
        "/v1/profiles/default", json={"settings": {"score_threshold": 1e9}, "require_eval": gate}
    )
    assert r.status_code == 412, r.text
    worse = pb.PutProfileRequest(
        name="default",
        settings=pb.RetrievalSettings(score_threshold=1e9),
        require_eval=pb.RequireEval(queries=QUERIES, qrels=_judged(QRELS), namespace=NS, min_delta=0.01),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PutProfile(worse)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == r.json()["error"]["message"]
    assert (await stub.GetProfile(pb.GetProfileRequest(name="default"))).version == 1
    same = pb.PutProfileRequest(
        name="default",
        settings=pb.RetrievalSettings(),
        require_eval=pb.RequireEval(queries=QUERIES, qrels=_judged(QRELS), namespace=NS),
    )
    assert (await stub.PutProfile(same)).version == 2  # loses nothing: passes
    unjudged = pb.RequireEval(queries={"q9": "nothing"}, qrels=_judged(QRELS), namespace=NS)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PutProfile(pb.PutProfileRequest(name="default", require_eval=unjudged))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "require_eval" in err.value.details()


# ----------------------------------------------------------------------------- one set of names

SAME_FIELDS: list[tuple[Any, type[BaseModel]]] = [
    # requests: a proto field the schema lacks would be refused as an unknown input
    (pb.SearchRequest, s.SearchRequest),
    (pb.Fusion, s.Fusion),
    (pb.RetrievalSettings, s.RetrievalSettings),
    (pb.IngestRequest, d.IngestRequest),
    (pb.Document, d.DocumentIn),
    (pb.IngestFilesRequest, d.IngestFilesRequest),
    (pb.UploadedFile, d.FileIn),
    (pb.DeleteDocumentsRequest, d.DeleteRequest),
    (pb.GetDocumentRequest, d.DocumentRef),
    (pb.CountDocumentsRequest, d.CountRequest),
    (pb.PutProfileRequest, p.PutProfileRequest),
    (pb.RequireEval, p.RequireEval),
    (pb.GetProfileRequest, p.ProfileRef),
    (pb.ListProfileVersionsRequest, p.ProfileRef),
    (pb.RollbackProfileRequest, p.RollbackRequest),
    (pb.GetNamespaceSettingsRequest, p.NamespaceRef),
    (pb.NamespaceSettings, p.NamespaceSettings),
    (pb.EvaluateRequest, e.EvaluationRequest),
    (pb.ProfileSpec, e.ProfileSpec),
    # responses: a schema field the proto lacks would fail the call
    (pb.IngestResponse, d.IngestResponse),
    (pb.IngestResult, d.IngestResult),
    (pb.GetDocumentResponse, d.DocumentOut),
    (pb.DeleteDocumentsResponse, d.DeleteResponse),
    (pb.CountDocumentsResponse, d.CountResponse),
    (pb.SearchResponse, s.SearchResponse),
    (pb.SearchHit, s.SearchHit),
    (pb.StageScores, s.StageScores),
    (pb.Profile, p.ProfileOut),
    (pb.Comparison, Comparison),
    (pb.ProfileResult, ProfileResult),
    (pb.QueryDelta, QueryDelta),
]


@pytest.mark.parametrize(("message", "model"), SAME_FIELDS, ids=lambda x: getattr(x, "__name__", ""))
def test_the_proto_and_the_schemas_name_the_same_fields(message: Any, model: type[BaseModel]) -> None:
    assert set(message.DESCRIPTOR.fields_by_name) == set(model.model_fields)


def test_translation_of_the_shapes_the_proto_spells_differently() -> None:
    upload = pb.UploadedFile(filename="a.md", data=b"\x00raw", id="")
    files = to_model(d.IngestFilesRequest, pb.IngestFilesRequest(namespace=NS, files=[upload]))
    assert (files.files[0].data, files.files[0].id, files.files[0].content_type) == (b"\x00raw", "", None)
    put = to_model(
        p.PutProfileRequest,
        pb.PutProfileRequest(
            name="x",
            expected_version=2**40,
            settings=pb.RetrievalSettings(top_k=0, score_threshold=math.inf),
            require_eval=pb.RequireEval(
                namespace=NS, qrels={"q": pb.Judgments(grades={"d": 2})}, queries={"q": "t"}
            ),
        ),
    )
    assert put.expected_version == 2**40 and put.settings == {"top_k": 0, "score_threshold": math.inf}
    assert put.require_eval is not None and put.require_eval.qrels == {"q": {"d": 2}}
    assert put.require_eval.split == "test" and put.require_eval.dataset is None  # unset: the defaults
    spec = to_model(e.ProfileSpec, pb.ProfileSpec(settings=pb.RetrievalSettings()))
    assert (spec.name, spec.settings) == (None, {})  # a oneof member that is set, though empty
    comparison = Comparison(
        profiles=[
            ProfileResult(
                name="c",
                version=None,
                metrics={"ndcg@10": math.nan},
                latency={"p50_ms": None, "p99_ms": None},
                queries=1,
                missing=1,
            )
        ],
        metric_keys=["ndcg@10"],
        permutations=1,
        seed=2**40,
    )
    msg = to_message(pb.Comparison, comparison)
    only = msg.profiles[0]
    assert (
        not only.HasField("version")
        and not only.latency.HasField("p50_ms")
        and math.isnan(only.metrics["ndcg@10"])
    )
    assert msg.seed == 2**40 and not msg.HasField("wins") and not msg.delta
    hit = to_message(pb.SearchResponse, s.SearchResponse(results=[], rerank="not_configured"))
    assert hit.rerank == pb.RERANK_STATUS_NOT_CONFIGURED
