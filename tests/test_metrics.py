"""The Prometheus exposition, parsed: requests by route and status on both transports, stages, cache."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from knowledge_client._proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client._proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc
from test_grpc import channel, stub  # noqa: F401  (fixtures: a real gRPC server over `core`)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_exposition(http_url: str, stub: pb_grpc.KnowledgeServiceStub) -> None:  # noqa: F811
    search = "/v1/namespaces/{namespace}/search"
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

    assert value("knowledge_requests_total", transport="http", route=search, status="200") == 2
    assert value("knowledge_requests_total", transport="http", route=search, status="422") == 1
    assert value("knowledge_requests_total", transport="grpc", route="Search", status="OK") == 1
    assert value("knowledge_request_seconds_count", transport="http", route=search) == 3
    assert value("knowledge_cache_lookups_total", outcome="hit") == 1
    assert value("knowledge_cache_lookups_total", outcome="miss") == 2
    assert value("knowledge_search_stage_seconds_count", stage="encode") == 2
    assert value("knowledge_search_stage_seconds_count", stage="cache") == 3
    assert value("knowledge_ingested_documents_total", status="created") == 2
    assert value("knowledge_ingested_chunks_total") == 2
    assert value("knowledge_component_up", component="store") == 1
    assert value("knowledge_in_flight", kind="search") == 0 and value("knowledge_queued", kind="ingest") == 0
