"""`knowledge bench`: search latency on a BEIR collection, against an engine-only baseline.

Each query runs through four paths in the same process and run, so the figures compare:
``engine`` (the fused Qdrant query alone, vectors precomputed: the baseline), ``encode`` (query
embedding + BM25), ``search_miss`` (the whole pipeline, cache cold) and ``search_hit`` (cached).
"""

from __future__ import annotations

import resource
import statistics
import time
from typing import Any

from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.pipelines.evaluation.datasets import BeirDataset
from knowledge_service.schemas.search import Mode, SearchRequest
from knowledge_service.storage import QueryPlan
from knowledge_service.tools.eval_runner import ensure_ingested, eval_namespace


def summarise(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(p99, 3),
        "per_s": round(1000 / statistics.fmean(ordered), 1),
    }


async def run_bench(settings: Settings, data: BeirDataset, n: int, mode: Mode) -> dict[str, Any]:
    core = await Knowledge.open(settings)
    try:
        ns = eval_namespace(data)
        await ensure_ingested(core, data, ns)
        queries = list(dict.fromkeys(data.queries.values()))[:n]  # distinct: the first pass misses
        reqs = [SearchRequest(namespace=ns, query=q, mode=mode) for q in queries]
        defaults = core.registry.resolve(ns, None).settings
        timings: dict[str, list[float]] = {"engine": [], "encode": [], "search_miss": [], "search_hit": []}
        for req in reqs[:10]:  # warm up the model and the engine
            core.dense.encode([req.query])
        plans = []
        for req in reqs:
            t = time.perf_counter()
            dense = core.dense.encode([req.query])[0]
            sparse = core.sparse.query(req.query)
            timings["encode"].append((time.perf_counter() - t) * 1000)
            plans.append(
                QueryPlan(
                    namespace=ns,
                    mode=mode,
                    limit=defaults.top_k + 10,
                    candidates=defaults.candidates,
                    dense=dense,
                    sparse_indices=list(sparse.indices),
                    sparse_values=list(sparse.values),
                )
            )
        for plan in plans:
            t = time.perf_counter()
            core.stores[0].query(plan)
            timings["engine"].append((time.perf_counter() - t) * 1000)
        for key in ("search_miss", "search_hit"):
            for req in reqs:
                t = time.perf_counter()
                resp = await core.searcher.search(req)
                timings[key].append((time.perf_counter() - t) * 1000)
                assert resp.cache_hit == (key == "search_hit")
        out: dict[str, Any] = {
            "dataset": data.name,
            "mode": mode,
            "queries": len(reqs),
            "store": core.store.backend,
            "cache": core.cache.name,
            "points": await core.store.count(ns, "chunk"),
        }
        out.update({k: summarise(v) for k, v in timings.items()})
        base = out["engine"]["median_ms"]
        out["miss_over_engine"] = round(out["search_miss"]["median_ms"] / base, 2)
        out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        return out
    finally:
        await core.close()
