"""The HTTP front door over a real server: routes, error format and limits."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from knowledge_service.core import limits as L

DOC = {
    "id": "guide",
    "title": "Guide",
    "text": "Qdrant stores vectors; Redis caches results.",
    "metadata": {"team": "search", "year": 2024},
}


@pytest.fixture
async def http(http_url: str):
    async with httpx.AsyncClient(base_url=http_url, timeout=30) as client:
        yield client


async def test_document_lifecycle(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/namespaces/docs/documents", json={"documents": [DOC]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["results"] == [{"id": "guide", "status": "created", "chunks": 1, "error": None}]
    assert body["index_version"] > 0

    r = await http.post(
        "/v1/namespaces/docs/search", json={"query": "where are results cached?", "explain": True}
    )
    hit = r.json()["results"][0]
    assert (hit["doc_id"], hit["chunk_id"], hit["metadata"]["year"]) == ("guide", "guide#0", 2024)
    assert hit["scores"]["dense_rank"] == 1 and hit["scores"]["sparse_rank"] == 1
    assert r.json()["cache_hit"] is False and r.json()["rerank"] == "not_configured"
    assert set(r.json()["timings_ms"]) >= {"cache", "encode", "query", "total"}
    again = await http.post(
        "/v1/namespaces/docs/search", json={"query": "where  are results cached?", "explain": True}
    )
    assert again.json()["cache_hit"] is True  # normalised query, same key

    r = await http.get("/v1/namespaces/docs/documents/guide")
    assert r.status_code == 200 and r.json()["text"] == DOC["text"]
    r = await http.get("/v1/namespaces/docs/count", params={"filter": '{"field": "team", "eq": "search"}'})
    assert r.json()["documents"] == 1
    r = await http.delete("/v1/namespaces/docs/documents/guide")
    assert r.json()["deleted"] == 1
    r = await http.get("/v1/namespaces/docs/documents/guide")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = await http.post("/v1/namespaces/docs/search", json={"query": "where are results cached?"})
    assert r.json()["results"] == [] and r.json()["cache_hit"] is False


async def test_file_upload(http: httpx.AsyncClient) -> None:
    files = [
        ("files", ("notes/intro.md", b"# Intro\n\nHybrid search fuses BM25 and vectors.", "text/markdown")),
        (
            "files",
            (
                "page.html",
                b"<html><title>Page</title><body><p>Rerankers reorder."
                b"</p><script>nope()</script></body></html>",
                "text/html",
            ),
        ),
    ]
    r = await http.post("/v1/namespaces/files/files", files=files, data={"metadata": '{"src": "up"}'})
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()["results"]] == ["notes/intro.md", "page.html"]
    nested = await http.get("/v1/namespaces/files/documents/notes/intro.md")  # ids may contain "/"
    assert nested.status_code == 200 and nested.json()["title"] == "Intro"
    doc = (await http.get("/v1/namespaces/files/documents/page.html")).json()
    assert doc["title"] == "Page" and "nope" not in doc["text"] and doc["metadata"]["src"] == "up"
    bad = await http.post(
        "/v1/namespaces/files/files", files=[("files", ("x.bin", b"\x00\xff\xfe\x00garbage", None))]
    )
    assert bad.status_code == 422 and "files[0]" in bad.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"query": ""}, "query", "at least 1"),
        ({"query": "   "}, "query", "non-whitespace"),
        ({"query": "x" * (L.MAX_QUERY_CHARS + 1)}, "query", str(L.MAX_QUERY_CHARS)),
        ({"query": "q", "top_k": L.MAX_TOP_K + 1}, "top_k", str(L.MAX_TOP_K)),
        ({"query": "q", "candidates": 0}, "candidates", "greater than or equal to 1"),
        ({"query": "q", "top_k": 50, "candidates": 20}, "candidates", "raise candidates"),
        ({"query": "q", "mode": "fuzzy"}, "mode", "hybrid"),
        ({"query": "q", "fusion": {"method": "rrf", "k": 0}}, "fusion.k", "greater than or equal to 1"),
        ({"query": "q", "filter": {"field": "a", "gt": 1}}, "filter", "exactly one of"),
        (
            {"query": "q", "filter": {"not": {"not": {"not": {"not": {"field": "a", "eq": 1}}}}}},
            "filter",
            "deeper than",
        ),
        ({"query": "q", "unknown": 1}, "unknown", "Extra inputs"),
    ],
)
async def test_bad_search_input_names_field_and_limit(
    http: httpx.AsyncClient, body: dict, field: str, words: str
) -> None:
    r = await http.post("/v1/namespaces/docs/search", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "INVALID_ARGUMENT"
    assert field in err["message"] and words in err["message"], err


async def test_bad_namespace_batch_and_body_limits(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/namespaces/bad%20name/search", json={"query": "q"})
    assert r.status_code == 422 and "namespace" in r.json()["error"]["message"]
    many = {"documents": [{"id": str(i), "text": "t"} for i in range(L.MAX_BATCH_DOCS + 1)]}
    r = await http.post("/v1/namespaces/docs/documents", json=many)
    assert r.status_code == 422 and str(L.MAX_BATCH_DOCS) in r.json()["error"]["message"]
    big = {"documents": [{"id": "big", "text": "x" * (L.MAX_DOC_CHARS + 1)}]}
    r = await http.post("/v1/namespaces/docs/documents", json=big)
    assert r.status_code == 422 and str(L.MAX_DOC_CHARS) in r.json()["error"]["message"]
    # Announce an oversize body: the service answers 413 before reading it.
    url = httpx.URL(str(http.base_url))
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(
        f"POST /v1/namespaces/docs/documents HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\n"
        f"Content-Length: {L.MAX_REQUEST_BYTES + 1}\r\n\r\n".encode()
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert b" 413 " in status_line
    r = await http.get("/v1/namespaces/docs/count", params={"filter": "{not json"})
    assert r.status_code == 422 and "filter" in r.json()["error"]["message"]


async def test_health_readiness_and_docs(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = (await http.get("/readyz")).json()
    assert ready["ready"] is True and ready["store"] == "ok"
    spec = (await http.get("/openapi.json")).json()
    assert "/v1/namespaces/{namespace}/search" in spec["paths"]
    assert (await http.get("/docs")).status_code == 200
