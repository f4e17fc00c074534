"""The Prometheus exposition, parsed: requests by route and status on both transports, stages, cache."""

from __future__ import annotations

import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_exposition(http_url: str, stub: pb_grpc.KnowledgeServiceStub) -> None:
    search = "Search"  # both doors name a call by its operation and its outcome by the error table
    async with httpx.AsyncClient(base_url=http_url, timeout=30) as http:
        docs = [{"id": "m1", "text": "Metrics count requests."}, {"id": "m2", "text": "And stages."}]
        await http.post("/v1/namespaces/kb/documents", json={"documents": docs})
        for _ in range(2):
            await http.post("/v1/namespaces/kb/search", json={"query": "count requests"})
        await http.post("/v1/namespaces/kb/search", json={"query": ""})
        await stub.Search(pb.SearchRequest(namespace="kb", query="stages"))
        r = await http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    got = samples(r.text)

    def value(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted(labels.items())))]

    assert value("knowledge_requests_total", transport="http", route=search, status="OK") == 2
    assert value("knowledge_requests_total", transport="http", route=search, status="INVALID_ARGUMENT") == 1
    assert value("knowledge_requests_total", transport="grpc", route="Search", status="OK") == 1
    assert value("knowledge_request_seconds_count", transport="http", route=search) == 3
    assert value("knowledge_request_seconds_count", transport="grpc", route=search) == 1
    assert value("knowledge_cache_lookups_total", outcome="hit") == 1
    assert value("knowledge_cache_lookups_total", outcome="miss") == 2
    assert value("knowledge_search_stage_seconds_count", stage="encode") == 2
    assert value("knowledge_search_stage_seconds_count", stage="cache") == 3
    assert value("knowledge_ingested_documents_total", status="created") == 2
    assert value("knowledge_ingested_chunks_total") == 2
    assert value("knowledge_component_up", component="store") == 1
    assert value("knowledge_in_flight", kind="search") == 0 and value("knowledge_queued", kind="ingest") == 0


async def test_both_doors_write_the_same_access_line(
    http_url: str,
    stub: pb_grpc.KnowledgeServiceStub,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One record per call on either door: same operation name, code, namespace and profile."""
    async with httpx.AsyncClient(base_url=http_url, timeout=30) as http:
        await http.post("/v1/namespaces/kb/documents", json={"documents": [{"id": "a1", "text": "Access."}]})
        with caplog.at_level(logging.INFO, logger="knowledge.access"):
            await http.post("/v1/namespaces/kb/search", json={"query": "access lines"})
            await stub.Search(pb.SearchRequest(namespace="kb", query="access lines"))
            r = await http.post("/v1/namespaces/kb/search", json={"query": ""})
    assert r.status_code == 422
    lines = [rec for rec in caplog.records if rec.name == "knowledge.access" and rec.route == "Search"]
    by_door = {(rec.transport, rec.status): rec for rec in lines}
    http_ok, grpc_ok = by_door[("http", "OK")], by_door[("grpc", "OK")]
    for rec in (http_ok, grpc_ok):
        assert (rec.namespace, rec.profile) == ("kb", "default")
        assert rec.latency_ms > 0 and len(rec.request_id) == 32
    assert by_door[("http", "INVALID_ARGUMENT")].http_status == 422
    assert not hasattr(grpc_ok, "http_status")
