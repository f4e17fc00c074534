"""The knowledge_search tool's own overhead: tool call over gRPC/HTTP vs the same search in-process.

Usage::

    .venv/bin/python scripts/bench_tool.py [--docs 500] [--calls 200] [--top-k 5]

Starts the service in this process (a background thread runs its event loop, the gRPC front door
and the HTTP front door) on a temporary store, ingests the first ``--docs`` documents of
``../shared/datasets/scifact`` (a synthetic corpus when that is absent), then times, per path,
``--calls`` searches that hit the result cache and ``--calls`` that miss it (distinct queries):

- ``direct``: ``await core.searcher.search(...)`` timed inside the service's event loop (no transport);
- ``client grpc`` / ``client http``: ``KnowledgeClient.search`` from the main thread;
- ``tool grpc`` / ``tool http``: ``KnowledgeSearchTool._run`` (client + formatting for the LLM).

Overhead = path median - direct median, on the same kind of call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_DISABLE_VERSION_CHECK", "true")

import uvicorn  # noqa: E402

from knowledge_client import KnowledgeClient  # noqa: E402
from knowledge_client.crewai import KnowledgeSearchTool  # noqa: E402
from knowledge_service.app import Knowledge  # noqa: E402
from knowledge_service.core.config import Settings  # noqa: E402
from knowledge_service.doors.grpc.server import create_server, start_server, stop_server  # noqa: E402
from knowledge_service.doors.http.app import create_app  # noqa: E402
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.search import SearchRequest  # noqa: E402

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact"
NS = "bench"


def load_corpus(n_docs: int, n_queries: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Documents and distinct queries: SciFact when present, else a synthetic set."""
    if (SCIFACT / "corpus.jsonl").exists():
        docs = []
        with open(SCIFACT / "corpus.jsonl") as f:
            for line, _ in zip(f, range(n_docs), strict=False):
                row = json.loads(line)
                docs.append({"id": row["_id"], "title": row.get("title") or None, "text": row["text"]})
        with open(SCIFACT / "queries.jsonl") as f:
            queries = list(dict.fromkeys(json.loads(line)["text"] for line in f))
        queries += [d["title"] for d in docs if d["title"]]
        return docs, list(dict.fromkeys(queries))[:n_queries]
    print(f"{SCIFACT} is absent: using a synthetic corpus", file=sys.stderr)
    words = "tide moon river salt harbour storm pilot current reef anchor lighthouse chart".split()
    docs = [
        {
            "id": f"d{i}",
            "title": f"Note {i}",
            "text": " ".join(words[(i * k) % len(words)] for k in range(1, 60)) + ".",
        }
        for i in range(n_docs)
    ]
    queries = [f"{words[i % len(words)]} {words[(i * 7) % len(words)]} {i}" for i in range(n_queries)]
    return docs, queries


def summary(samples_s: list[float]) -> tuple[float, float]:
    """(median, p99) in milliseconds."""
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return statistics.median(ordered) * 1000, p99 * 1000


class Service:
    """The service on its own event loop in a background thread (as `knowledge serve` would run)."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings(data_dir=data_dir, optimize_idle_s=3600)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def start(self, docs: list[dict[str, Any]]) -> None:
        self.core = await Knowledge.open(self.settings)
        for i in range(0, len(docs), 64):
            await self.core.documents.ingest(IngestRequest(namespace=NS, documents=docs[i : i + 64]))
        self.grpc_server, port = create_server(self.core, self.settings, port=0)
        await start_server(self.grpc_server)
        self.grpc_target = f"127.0.0.1:{port}"
        self.http = uvicorn.Server(
            uvicorn.Config(
                create_app(self.settings, self.core), host="127.0.0.1", port=0, log_level="warning"
            )
        )
        self.http.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.http_task = asyncio.ensure_future(self.http.serve())
        while not self.http.started:
            await asyncio.sleep(0.01)
        http_port = self.http.servers[0].sockets[0].getsockname()[1]
        self.http_target = f"http://127.0.0.1:{http_port}"

    async def direct(self, queries: list[str], top_k: int) -> list[float]:
        """Time core.search in the service loop: the in-process baseline."""
        samples = []
        for q in queries:
            started = time.perf_counter()
            await self.core.searcher.search(SearchRequest(namespace=NS, query=q, top_k=top_k))
            samples.append(time.perf_counter() - started)
        return samples

    async def stop(self) -> None:
        self.http.should_exit = True
        await self.http_task
        await stop_server(self.grpc_server, 0)
        await self.core.close()


def timed(fn: Callable[[str], Any], queries: list[str]) -> list[float]:
    samples = []
    for q in queries:
        started = time.perf_counter()
        fn(q)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--top-k", type=int, default=5)
    args = parser.parse_args()
    n = args.calls
    paths = ["direct", "client grpc", "client http", "tool grpc", "tool http"]
    docs, queries = load_corpus(args.docs, n * len(paths) + 20)
    if len(queries) < n * len(paths) + 20:
        sys.exit(f"need {n * len(paths) + 20} distinct queries, have {len(queries)}")

    with tempfile.TemporaryDirectory() as tmp:
        svc = Service(Path(tmp) / "data")
        started = time.perf_counter()
        svc.run(svc.start(docs))
        clients = {
            t: KnowledgeClient(svc.grpc_target if t == "grpc" else svc.http_target, transport=t)
            for t in ("grpc", "http")
        }
        count = clients["grpc"].count(NS)
        print(
            f"ingested {count.documents} documents ({count.chunks} chunks) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        tools = {
            t: KnowledgeSearchTool(
                target=svc.grpc_target if t == "grpc" else svc.http_target,
                transport=t,
                namespace=NS,
                top_k=args.top_k,
            )
            for t in ("grpc", "http")
        }
        calls: dict[str, Callable[[str], Any]] = {
            "client grpc": lambda q: clients["grpc"].search(NS, q, top_k=args.top_k),
            "client http": lambda q: clients["http"].search(NS, q, top_k=args.top_k),
            "tool grpc": lambda q: tools["grpc"]._run(q),
            "tool http": lambda q: tools["http"]._run(q),
        }
        hot = queries[:20]  # cached once, then every call is a hit
        svc.run(svc.direct(hot * 2, args.top_k))
        for fn in calls.values():  # warm connections and code paths
            timed(fn, hot)
        misses = {p: queries[20 + i * n : 20 + (i + 1) * n] for i, p in enumerate(paths)}
        results: dict[str, dict[str, tuple[float, float]]] = {}
        hits = [hot[i % len(hot)] for i in range(n)]
        results["direct"] = {
            "hit": summary(svc.run(svc.direct(hits, args.top_k))),
            "miss": summary(svc.run(svc.direct(misses["direct"], args.top_k))),
        }
        for path, fn in calls.items():
            results[path] = {"hit": summary(timed(fn, hits)), "miss": summary(timed(fn, misses[path]))}
        for t in ("grpc", "http"):
            tools[t].close()
            clients[t].close()
        svc.run(svc.stop())

    base = results["direct"]
    print(f"\n{n} calls per cell, top_k={args.top_k}, {len(docs)} documents; times in ms")
    print(
        f"{'path':<12} {'hit median':>10} {'hit p99':>8} {'miss median':>11} {'miss p99':>9} "
        f"{'hit overhead':>12} {'miss overhead':>13}"
    )
    for path, cell in results.items():
        over_hit = cell["hit"][0] - base["hit"][0]
        over_miss = cell["miss"][0] - base["miss"][0]
        print(
            f"{path:<12} {cell['hit'][0]:>10.2f} {cell['hit'][1]:>8.2f} {cell['miss'][0]:>11.2f} "
            f"{cell['miss'][1]:>9.2f} {over_hit:>+12.2f} {over_miss:>+13.2f}"
        )
    for t in ("grpc", "http"):
        ratio = results[f"tool {t}"]["hit"][0] / base["hit"][0]
        print(
            f"tool {t}: hit overhead {results[f'tool {t}']['hit'][0] - base['hit'][0]:.2f} ms median "
            f"({ratio:.1f}x the in-process hit); target <= 2 ms"
        )


if __name__ == "__main__":
    main()
