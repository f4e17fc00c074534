"""`knowledge scale`: how search cost grows with the corpus, the BM25 leg against rank-bm25, and
whether index optimisation stalls serving.

The corpus is synthetic, made from a real collection's vocabulary: each document is ``WORDS``
words drawn from the collection's word frequencies (one chunk each), and its vector mixes two real
passage vectors of the collection with a little noise (``PoolDense``), so that 100k chunks are
built in minutes and not the hours a real encode would take. Queries are the collection's own,
encoded by the real model.

For each size the corpus is ingested through the core in this process (the real ingest path, with
the vectors made as above) and its BM25 leg is timed against rank-bm25's ``BM25Okapi`` over the
same texts. Then a ``knowledge serve`` child serves the store over HTTP three times: with the index
unoptimised (misses at 1 and ``--concurrency`` clients, resident memory, and a fixed-rate probe of
``/healthz`` and search as the stall baseline); while the child optimises the index by its own
upkeep (the same probe, from the log line that starts it to the one that ends it); and optimised.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.models.base import DenseModel
from knowledge_service.pipelines.evaluation.datasets import BeirDataset
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.tools import baselines
from knowledge_service.tools.bench import settings_for
from knowledge_service.tools.load import HttpCaller, InProcessCaller, QueryTexts, drive
from knowledge_service.tools.paths import median_p99, ratio
from knowledge_service.tools.served import ServedChild, proc_memory_mb, served

WORDS = 120  # words per synthetic document: one chunk each
POOL = 512  # real passages whose vectors the synthetic ones mix
BATCH = 256
NAMESPACE = "scale"
STALL_MS = 250.0
RANK_BM25_UP_TO = 100_000  # beyond, its index (a dict per document) outgrows what is worth holding
HEALTH_EVERY_S, SEARCH_EVERY_S = 0.05, 0.1
BASELINE_PROBE_S = 10.0
OPTIMISE_TIMEOUT_S = 3600.0
STARTED, DONE = "optimising a copy", "swapped in"


class PoolDense(DenseModel):
    """Vectors for synthetic texts: a text's hash picks two real passage vectors of ``pool`` and a
    weight, plus noise; unit length. It stands in for the real model when building the corpus only
    (same spec, dimension and vector space name, so the store is the one the real model opens)."""

    def __init__(self, real: DenseModel, pool: np.ndarray) -> None:
        self.spec, self.dim, self.backend, self.vectors = real.spec, real.dim, real.backend, real.vectors
        self._real, self._pool = real, pool

    def encode(self, texts: list[str]) -> list[list[float]]:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            rng = np.random.default_rng(zlib.crc32(text.encode()))
            a, b = rng.integers(0, len(self._pool), 2)
            v = self._pool[a] + rng.uniform(0.2, 0.8) * self._pool[b] + rng.normal(0, 0.02, self.dim)
            out[i] = v / np.linalg.norm(v)
        return out.tolist()

    def tokenizer(self) -> Any:
        return self._real.tokenizer()


def vocabulary(data: BeirDataset) -> tuple[list[str], np.ndarray]:
    counts = Counter(
        w for title, text in data.corpus.values() for w in re.findall(r"[a-z]+", f"{title} {text}".lower())
    )
    words = list(counts)
    freq = np.array([counts[w] for w in words], dtype=np.float64)
    return words, freq / freq.sum()


def synthetic_texts(words: list[str], p: np.ndarray, n: int, seed: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(words), size=(n, WORDS), p=p)
    return [" ".join(words[j] for j in row) for row in picks]


async def run_scale(
    settings: Settings,
    data: BeirDataset,
    sizes: list[int],
    queries: int,
    concurrency: int,
    root: Path,
    *,
    optimise: bool = True,
) -> dict[str, Any]:
    settings = settings_for(settings, models_dir=settings.models_dirs[-1].resolve())  # exports shared
    real = baselines.load(settings, settings.embed_backend)
    pool_texts = [f"{t}. {x}" for t, x in list(data.corpus.values())[:POOL]]
    pool = np.asarray(real.encode(pool_texts), dtype=np.float32)
    words, p = vocabulary(data)
    texts = QueryTexts(list(data.queries.values()))
    out: dict[str, Any] = {
        "dataset": data.name,
        "synthetic": {"words_per_doc": WORDS, "vocabulary": len(words), "vector_pool": len(pool)},
        "backend": settings.embed_backend,
        "queries": queries,
        "concurrency": concurrency,
        "sizes": {},
    }
    for size in sorted(set(sizes)):
        s = settings_for(settings, data_dir=root / f"scale-{size}", optimize_idle_s=0)
        figures = await _build(s, PoolDense(real, pool), words, p, size, texts, queries)
        figures["served"] = await _serve(s, texts, queries, concurrency, optimise)
        out["sizes"][str(size)] = figures
    _growth(out["sizes"])
    return out


async def _build(
    s: Settings, dense: PoolDense, words: list[str], p: np.ndarray, size: int, texts: QueryTexts, queries: int
) -> dict[str, Any]:
    corpus = synthetic_texts(words, p, size)
    core = await Knowledge.open(s, dense=dense)
    try:
        started = time.perf_counter()
        chunks = 0
        for start in range(0, size, BATCH):
            docs = [{"id": f"s{i}", "text": corpus[i]} for i in range(start, min(size, start + BATCH))]
            resp = await core.documents.ingest(IngestRequest(namespace=NAMESPACE, documents=docs))
            chunks += sum(r.chunks for r in resp.results)
        build_s = time.perf_counter() - started
        sparse = (await drive(InProcessCaller(core), NAMESPACE, "sparse", texts.take(queries), 1)).summary()
    finally:
        await core.close()
    return {
        "docs": size,
        "chunks": chunks,
        "build": {"seconds": round(build_s, 1), "docs_per_s": round(size / build_s, 1)},
        "bm25": _versus_rank_bm25(corpus, texts.take(min(queries, 50)), sparse),
    }


def _versus_rank_bm25(corpus: list[str], queries: list[str], sparse: dict[str, Any]) -> dict[str, Any]:
    """rank-bm25's BM25Okapi over the same texts, per query (score all, take the top 10)."""
    if len(corpus) > RANK_BM25_UP_TO:
        return {"sidecar_sparse_search": sparse, "rank_bm25": f"not run above {RANK_BM25_UP_TO} documents"}
    try:
        from rank_bm25 import BM25Okapi
    except ImportError:
        return {"sidecar_sparse_search": sparse, "rank_bm25": "not installed (pip install rank-bm25)"}
    started = time.perf_counter()
    bm25 = BM25Okapi([t.split() for t in corpus])
    index_s = time.perf_counter() - started
    times = []
    for q in queries:
        started = time.perf_counter()
        scores = bm25.get_scores(re.findall(r"[a-z]+", q.lower()))
        np.argpartition(-scores, 10)[:10]
        times.append((time.perf_counter() - started) * 1000)
    median = statistics.median(times)
    return {
        "sidecar_sparse_search": sparse,
        "rank_bm25": {"index_s": round(index_s, 1), "queries": len(times), "median_ms": round(median, 2)},
        "rank_bm25_over_sidecar": ratio(median, sparse.get("median_ms")),
    }


async def _serve(
    s: Settings, texts: QueryTexts, queries: int, concurrency: int, optimise: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    never = {"KNOWLEDGE_OPTIMIZE_IDLE_S": "0"}
    async with served(s.data_dir, s.embed_backend, s.models_dirs[-1], never) as child:
        out["unoptimised"] = await _measure(child, texts, queries, concurrency)
        out["unoptimised"]["probe"] = await _probe(child, texts, _for(BASELINE_PROBE_S))
    if not optimise:
        return out
    soon = {"KNOWLEDGE_OPTIMIZE_IDLE_S": "1", "KNOWLEDGE_OPTIMIZE_MIN_POINTS": "1"}
    async with served(s.data_dir, s.embed_backend, s.models_dirs[-1], soon) as child:
        await _wait_log(child, STARTED)
        started = time.perf_counter()
        gave_up = _for(OPTIMISE_TIMEOUT_S)
        probe = await _probe(child, texts, lambda: _logged(child, DONE) or gave_up())
        out["while_optimising"] = {
            "seconds": round(time.perf_counter() - started, 1),
            "swapped_in": _logged(child, DONE),
            "probe": probe,
        }
        out["optimised"] = await _measure(child, texts, queries, concurrency)
    return out


async def _measure(child: ServedChild, texts: QueryTexts, queries: int, concurrency: int) -> dict[str, Any]:
    caller = HttpCaller(child.url, concurrency)
    try:
        await drive(caller, NAMESPACE, "hybrid", texts.take(10), 1)
        levels = {}
        for level in sorted({1, concurrency}):
            phase = await drive(caller, NAMESPACE, "hybrid", texts.take(queries), level)
            levels[str(level)] = phase.summary()
    finally:
        await caller.aclose()
    return {
        "hybrid_miss": levels,
        "rss_mb": proc_memory_mb(child.pid, "VmRSS"),
        "peak_rss_mb": proc_memory_mb(child.pid),
    }


def _for(seconds: float) -> Callable[[], bool]:
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


def _logged(child: ServedChild, words: str) -> bool:
    return words in child.output(tail=1 << 20)


async def _wait_log(child: ServedChild, words: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not _logged(child, words):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the child never logged {words!r}:\n{child.output()}")
        await asyncio.sleep(0.1)


async def _probe(child: ServedChild, texts: QueryTexts, done: Callable[[], bool]) -> dict[str, Any]:
    """Open-loop requests at a fixed rate (a stall shows as waiting, not as requests not sent):
    ``/healthz`` every HEALTH_EVERY_S and a search miss every SEARCH_EVERY_S, until ``done()``
    (polled before each send; the optimisation's end is seen in the log, polled every 0.5 s)."""
    seen: dict[str, list[float]] = {"healthz": [], "search": []}
    errors: Counter[str] = Counter()
    tasks: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=child.url, timeout=60) as http:

        async def timed(kind: str, call: Callable[[], Awaitable[httpx.Response]]) -> None:
            started = time.perf_counter()
            try:
                (await call()).raise_for_status()
            except httpx.HTTPStatusError as exc:
                errors[f"{kind}:{exc.response.status_code}"] += 1
                return
            except httpx.HTTPError as exc:
                errors[f"{kind}:{type(exc).__name__}"] += 1
                return
            seen[kind].append((time.perf_counter() - started) * 1000)

        def send(kind: str) -> None:
            if kind == "healthz":
                call: Callable[[], Awaitable[httpx.Response]] = lambda: http.get("/healthz")  # noqa: E731
            else:
                body = {"query": texts.take(1)[0], "mode": "hybrid"}
                call = lambda: http.post(f"/v1/namespaces/{NAMESPACE}/search", json=body)  # noqa: E731
            task = asyncio.create_task(timed(kind, call))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        started = time.monotonic()
        tick, finished, checked = 0, False, 0.0
        while not finished:
            at = started + tick * HEALTH_EVERY_S
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            send("healthz")
            if tick % round(SEARCH_EVERY_S / HEALTH_EVERY_S) == 0:
                send("search")
            tick += 1
            if time.monotonic() - checked >= 0.5:
                checked, finished = time.monotonic(), done()
        await asyncio.gather(*tasks)
    return {kind: _tail(ms) for kind, ms in seen.items()} | {"errors": dict(errors)}


def _tail(ms: list[float]) -> dict[str, Any]:
    done = sorted(ms)
    if not done:
        return {"requests": 0}
    return {
        "requests": len(done),
        **median_p99(done, digits=2),
        "max_ms": round(done[-1], 2),
        f"over_{STALL_MS:g}_ms": sum(1 for x in done if x > STALL_MS),
    }


def _growth(sizes: dict[str, Any]) -> None:
    """p50 of a hybrid miss at 1 client, per size and index state, relative to the smallest size."""
    first: tuple[int, dict[str, Any]] | None = None
    for size, figures in sizes.items():
        served_states = figures["served"]
        p50 = {
            state: served_states[state]["hybrid_miss"]["1"].get("median_ms")
            for state in ("unoptimised", "optimised")
            if state in served_states
        }
        figures["p50_ms_at_1_client"] = p50
        first = first or (int(size), p50)
        figures["growth_vs_smallest"] = {
            "chunks_x": round(int(size) / first[0], 1),
            **{f"{state}_p50_x": ratio(v, first[1].get(state)) for state, v in p50.items()},
        }
