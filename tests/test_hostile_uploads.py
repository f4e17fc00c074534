"""Hostile files through the real HTTP front door: each is parsed or refused with a 422 naming the
limit, in worker processes, while searches go on being served and the service does not grow."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from knowledge_service.core.config import Settings
from test_parse_limits import rss, shared_stream_pdf

PARSE_TIMEOUT_S = 90.0
FILES = {
    # a tree 1.2 million elements deep around one word (was 69 s and +734 MB)
    "nested.html": (b"<div>" * 1_200_000 + b"word", 200, None),
    # 20 KB whose pages share one stream: 80 M characters (was 17 s before the 2 M check ran)
    "shared.pdf": (shared_stream_pdf(pages=200, lines=2_000, width=200), 422, "(MAX_DOC_CHARS)"),
    # one 80 KB Markdown line (the heading regex took 12.5 s)
    "line.md": (b"# a" + b" " * 80_000 + b"c", 200, None),
    # legal, but decoding it needs far more than the workers' memory limit below
    "bomb.html": (b"<p>kept</p><!--" + b"a" * 9_000_000 + "\N{GRINNING FACE}-->".encode(), 422, "MEMORY_MB"),
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:  # overrides conftest's: small worker memory
    # A generous time limit: nested.html must be parsed even on a loaded machine (the time limit
    # has tests of its own in test_parse_limits).
    return Settings(
        data_dir=tmp_path / "data",
        optimize_idle_s=0,
        parse_memory_mb=32,
        parse_workers=1,
        parse_timeout_s=PARSE_TIMEOUT_S,
    )


async def test_hostile_files_fail_alone_while_searches_are_served(http_url: str) -> None:
    async with httpx.AsyncClient(base_url=http_url, timeout=PARSE_TIMEOUT_S + 30) as http:
        docs = [{"id": f"d{i}", "text": f"Searchable note {i}."} for i in range(5)]
        assert (await http.post("/v1/namespaces/kb/documents", json={"documents": docs})).status_code == 200
        before = rss()
        served: list[int] = []
        done = asyncio.Event()

        async def searching() -> None:
            i = 0
            while not done.is_set():
                r = await http.post("/v1/namespaces/kb/search", json={"query": f"note {i % 5}", "top_k": 2})
                served.append(r.status_code)
                i += 1

        searcher = asyncio.create_task(searching())
        try:
            for name, (data, status, limit) in FILES.items():
                served_before = len(served)
                r = await asyncio.wait_for(
                    http.post("/v1/namespaces/kb/files", files=[("files", (name, data))]),
                    timeout=PARSE_TIMEOUT_S + 30,
                )
                assert r.status_code == status, (name, r.text)
                if limit is not None:
                    message = r.json()["error"]["message"]
                    assert limit in message and name in message and r.json()["error"]["field"] == "files[0]"
                else:
                    assert r.json()["results"][0]["status"] == "created"
                assert len(served) > served_before, f"no search was served while {name} was parsed"
        finally:
            done.set()
            await searcher
        assert served and set(served) == {200}
        assert rss() - before < 300 * 2**20  # the parsing happened elsewhere
        r = await http.post("/v1/namespaces/kb/search", json={"query": "word"})
        assert r.json()["results"][0]["doc_id"] == "nested.html"
