"""Traces (an in-memory exporter: one span per stage under the request's span, continuing the
caller's trace) and the one-line-per-request access log (no query text unless enabled)."""

from __future__ import annotations

import logging

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness import serve_grpc
from knowledge_service.core.config import Settings
from knowledge_service.ops import tracing
from knowledge_service.schemas.documents import IngestRequest

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def exporter(settings: Settings) -> InMemorySpanExporter:
    """Install the process's tracer provider with an in-memory exporter (before the app is built)."""
    if not tracing.enabled():
        tracing.setup_tracing(settings, InMemorySpanExporter())
    processor = tracing._provider._active_span_processor._span_processors[0]  # type: ignore[union-attr]
    processor.span_exporter.clear()
    return processor.span_exporter


async def test_search_span_tree_and_access_log(
    exporter: InMemorySpanExporter, http_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with httpx.AsyncClient(base_url=http_url, timeout=30) as http:
        await http.post(
            "/v1/namespaces/obs/documents",
            json={"documents": [{"id": "t", "text": "Traces show where the time goes."}]},
        )
        exporter.clear()
        with caplog.at_level(logging.INFO, logger="knowledge.access"):
            r = await http.post(
                "/v1/namespaces/obs/search",
                json={"query": "where does time go"},
                headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01", "x-request-id": "req-42"},
            )
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-42"

    spans = exporter.get_finished_spans()
    by_name = {s.name: s for s in spans}
    assert {"search", "search.cache", "search.encode", "search.query"} <= set(by_name)
    server = next(s for s in spans if s.kind.name == "SERVER")
    assert f"{server.context.trace_id:032x}" == TRACE_ID  # the caller's trace continues here
    assert by_name["search"].parent.span_id == server.context.span_id
    for stage in ("search.cache", "search.encode", "search.query"):
        assert by_name[stage].parent.span_id == by_name["search"].context.span_id
        assert by_name[stage].context.trace_id == server.context.trace_id
    assert by_name["search.cache"].attributes["cache.hit"] is False
    assert by_name["search.query"].attributes["backend"] == "edge"
    assert by_name["search.query"].attributes["hits"] >= 1
    assert by_name["search"].attributes["profile"] == "default"

    line = next(
        rec for rec in caplog.records if getattr(rec, "route", "") == "Search" and rec.transport == "http"
    )
    assert (line.request_id, line.namespace, line.profile, line.status) == ("req-42", "obs", "default", "OK")
    assert line.http_status == 200
    assert line.trace_id == TRACE_ID and line.latency_ms > 0
    assert not hasattr(line, "query")  # no query text unless KNOWLEDGE_LOG_QUERIES


def test_json_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from knowledge_service.ops.logs import configure_logging, log_request

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(Settings(log_format="json", log_level="info"))
        log_request(
            transport="grpc",
            route="Search",
            status="OK",
            latency_ms=1.5,
            request_id="r1",
            namespace="kb",
            profile=None,
        )
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert (
            line["logger"] == "knowledge.access" and line["level"] == "INFO" and line["message"] == "request"
        )
        assert (line["route"], line["status"], line["namespace"], line["request_id"]) == (
            "Search",
            "OK",
            "kb",
            "r1",
        )
        assert "profile" not in line and "time" in line
    finally:
        root.handlers[:], root.level = saved


async def test_client_and_tool_make_the_callers_span_the_parent(
    exporter: InMemorySpanExporter, http_url: str, core, settings: Settings
) -> None:
    import asyncio

    from opentelemetry import trace

    import knowledge_client as kc
    from knowledge_client.crewai import KnowledgeSearchTool

    async with serve_grpc(core, settings) as serving:
        await core.documents.ingest(
            IngestRequest(namespace="obs", documents=[{"id": "t", "text": "Crews call the side-car."}])
        )
        crew = trace.get_tracer("a-crew")
        targets = {"grpc": serving.target, "http": http_url}
        for transport, target in targets.items():
            exporter.clear()
            with crew.start_as_current_span(f"crew-step-{transport}") as step:
                async with kc.AsyncKnowledgeClient(target, transport=transport) as client:
                    await client.search("obs", f"who calls the side-car via {transport}")
                tool = KnowledgeSearchTool(target=target, transport=transport, namespace="obs")
                await asyncio.to_thread(tool._run, query=f"side-car callers over {transport}")
            servers = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
            assert len(servers) == 2, [s.name for s in exporter.get_finished_spans()]
            for span in servers:  # the crew's span is the parent of the service's
                assert span.parent is not None and span.parent.span_id == step.get_span_context().span_id
                assert span.context.trace_id == step.get_span_context().trace_id
