"""The paths of one search timed apart, in process: where a cache miss's time goes.

``engine``: the fused Qdrant query alone, vectors precomputed (the baseline); ``encode``: query
embedding + BM25; ``encode_then_engine``: the two in turn for each query, on one thread, which is
the work a miss cannot skip (each of the two loops alone keeps its own code and data in the CPU's
caches, so their sum is less than the two take in turn); ``search_miss``: the whole pipeline,
cache cold; ``search_hit``: cached.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from knowledge_service.app import Knowledge
from knowledge_service.schemas.search import Mode, SearchRequest
from knowledge_service.storage import QueryPlan


def median_p99(samples_ms: list[float], digits: int = 3) -> dict[str, float]:
    """``median_ms`` and ``p99_ms`` (the sample at the 99th percentile's rank) of a non-empty list."""
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return {"median_ms": round(statistics.median(ordered), digits), "p99_ms": round(p99, digits)}


def summarise(samples_ms: list[float]) -> dict[str, float]:
    return {**median_p99(samples_ms), "per_s": round(1000 / statistics.fmean(samples_ms), 1)}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


async def inprocess_paths(core: Knowledge, ns: str, queries: list[str], mode: Mode) -> dict[str, Any]:
    """The paths of a search timed apart, each query in turn: engine alone, encode alone, the two
    in turn, whole search on a miss, then on a hit."""
    reqs = [SearchRequest(namespace=ns, query=q, mode=mode) for q in queries]
    defaults = core.registry.resolve(ns, None).settings
    timings: dict[str, list[float]] = {
        "engine": [],
        "encode": [],
        "encode_then_engine": [],
        "search_miss": [],
        "search_hit": [],
    }

    def encoded(query: str) -> QueryPlan:
        sparse = core.sparse.query(query)
        return QueryPlan(
            namespace=ns,
            mode=mode,
            limit=defaults.top_k + 10,
            candidates=defaults.candidates,
            dense=core.dense.encode([query])[0],
            sparse_indices=list(sparse.indices),
            sparse_values=list(sparse.values),
        )

    plans = []
    for req in reqs:
        t = time.perf_counter()
        plans.append(encoded(req.query))
        timings["encode"].append((time.perf_counter() - t) * 1000)
    for plan in plans:
        t = time.perf_counter()
        core.stores[0].query(plan)
        timings["engine"].append((time.perf_counter() - t) * 1000)
    for req in reqs:
        t = time.perf_counter()
        core.stores[0].query(encoded(req.query))
        timings["encode_then_engine"].append((time.perf_counter() - t) * 1000)
    for key in ("search_miss", "search_hit"):
        for req in reqs:
            t = time.perf_counter()
            resp = await core.searcher.search(req)
            timings[key].append((time.perf_counter() - t) * 1000)
            if resp.cache_hit != (key == "search_hit"):
                raise RuntimeError(f"{key}: the search was {'' if resp.cache_hit else 'not '}a cache hit")
    out: dict[str, Any] = {
        "queries": len(reqs),
        "store": core.store.backend,
        "cache": core.cache.name,
        "points": await core.store.count(ns, "chunk"),
    }
    out.update({k: summarise(v) for k, v in timings.items()})
    out["miss_over_engine"] = ratio(out["search_miss"]["median_ms"], out["engine"]["median_ms"])
    return out
