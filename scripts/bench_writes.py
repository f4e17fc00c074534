"""Measure the write path: ingest, re-ingest, update and delete throughput, and HTTP search hits.

    .venv/bin/python scripts/bench_writes.py [--dataset ../shared/datasets/scifact] [--docs 400]

Embedded defaults (Edge, in-process cache) in a temporary folder. Prints one JSON line:
documents per second for a first ingest (batches of 16: chunking, encoding and writing), for
re-ingesting the same documents (``unchanged``: content hash and repair check only), for an update
of every document (a new title: everything is re-encoded and rewritten), for deletes by id (10 per
call), and the median and p99 of 1,000 cached searches through the real HTTP front door.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn

from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.doors.http.app import create_app
from knowledge_service.schemas.documents import DeleteRequest, IngestRequest

BATCH = 16


async def ingest_all(core: Knowledge, docs: list[dict]) -> float:
    started = time.perf_counter()
    for i in range(0, len(docs), BATCH):
        await core.documents.ingest(IngestRequest(namespace="kb", documents=docs[i : i + BATCH]))
    return round(len(docs) / (time.perf_counter() - started), 1)


def search_hits(port: int, calls: int = 1_000) -> dict[str, float]:
    latencies = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        body = {"query": "cancer cells", "top_k": 5}
        for _ in range(50):  # warm up (the first call fills the cache)
            client.post("/v1/namespaces/kb/search", json=body)
        for _ in range(calls):
            started = time.perf_counter()
            resp = client.post("/v1/namespaces/kb/search", json=body)
            latencies.append((time.perf_counter() - started) * 1000)
            assert resp.json()["cache_hit"]
    latencies.sort()
    return {
        "hit_median_ms": round(statistics.median(latencies), 3),
        "hit_p99_ms": round(latencies[int(len(latencies) * 0.99)], 3),
    }


async def main(dataset: Path, n: int) -> dict[str, float]:
    with (dataset / "corpus.jsonl").open() as handle:
        rows = [json.loads(line) for line, _ in zip(handle, range(n), strict=False)]
    docs = [{"id": r["_id"], "title": r.get("title") or None, "text": r["text"]} for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", optimize_idle_s=0, http_port=0)
        core = await Knowledge.open(settings)
        try:
            await core.documents.ingest(IngestRequest(namespace="warm-up", documents=docs[:BATCH]))
            out: dict[str, float] = {"docs": len(docs)}
            out["ingest_docs_per_s"] = await ingest_all(core, docs)
            out["unchanged_docs_per_s"] = await ingest_all(core, docs)
            out["update_docs_per_s"] = await ingest_all(
                core, [{**d, "title": f"{d['title']} v2"} for d in docs]
            )
            started = time.perf_counter()
            for i in range(0, len(docs) // 2, 10):
                await core.documents.delete(
                    DeleteRequest(namespace="kb", ids=[d["id"] for d in docs[i : i + 10]])
                )
            out["delete_docs_per_s"] = round(len(docs) // 2 / (time.perf_counter() - started), 1)

            server = uvicorn.Server(uvicorn.Config(create_app(settings, core), port=0, log_level="warning"))
            server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
            task = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            out.update(await asyncio.to_thread(search_hits, port))
            server.should_exit = True
            await task
            return out
        finally:
            await core.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path("../shared/datasets/scifact"))
    parser.add_argument("--docs", type=int, default=400)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.dataset, args.docs))))
