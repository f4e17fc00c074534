"""`knowledge eval`: ingest a BEIR collection into its own namespace and measure retrieval."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.pipelines.evaluation.comparison import compare
from knowledge_service.pipelines.evaluation.datasets import BeirDataset
from knowledge_service.pipelines.evaluation.scoring import evaluate
from knowledge_service.schemas.common import parse
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.evaluations import ProfileSpec
from knowledge_service.schemas.search import RetrievalSettings
from knowledge_service.tools.report import render_html, write_report

INGEST_BATCH = 64


def eval_namespace(data: BeirDataset) -> str:
    return "eval-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", data.name)[:50]


async def ensure_ingested(core: Knowledge, data: BeirDataset, namespace: str) -> dict[str, int]:
    """Ingest the corpus; re-runs skip unchanged documents by content hash (no re-encoding)."""
    counts: dict[str, int] = {}
    items = list(data.corpus.items())
    with tqdm(total=len(items), unit="doc", desc=f"ingest {data.name}", leave=False) as bar:
        for start in range(0, len(items), INGEST_BATCH):
            docs = [
                {"id": doc_id, "title": title or None, "text": text or title or doc_id}
                for doc_id, (title, text) in items[start : start + INGEST_BATCH]
            ]
            resp = await core.documents.ingest(IngestRequest(namespace=namespace, documents=docs))
            for r in resp.results:
                counts[r.status] = counts.get(r.status, 0) + 1
            bar.update(len(docs))
    return counts


async def run_eval(
    settings: Settings, data: BeirDataset, modes: list[str], fusion: str, rrf_k: int, depth: int
) -> list[dict[str, Any]]:
    """One line per retrieval mode (default settings otherwise); searches bypass the cache."""
    core = await Knowledge.open(settings)
    try:
        namespace = eval_namespace(data)
        started = time.perf_counter()
        ingested = await ensure_ingested(core, data, namespace)
        ingest_s = time.perf_counter() - started
        lines = []
        for mode in modes:
            chosen = parse(RetrievalSettings, mode=mode, fusion={"method": fusion, "k": rrf_k})
            run = await core.evaluations.profile_run(namespace, data.queries, mode, None, chosen, depth)
            metrics = evaluate(run.run, data.qrels)
            lines.append(
                {
                    "dataset": data.name,
                    "mode": mode,
                    **({"fusion": fusion, "rrf_k": rrf_k} if mode == "hybrid" else {}),
                    "ndcg@10": round(metrics["ndcg@10"], 4),
                    "recall@100": round(metrics["recall@100"], 4),
                    "mrr@10": round(metrics["mrr@10"], 4),
                    "queries": int(metrics["queries"]),
                    "latency_ms_p50": round(statistics.median(run.latencies_ms), 2),
                    "ingest": ingested,
                    "ingest_docs_per_s": round(ingested.get("created", 0) / ingest_s, 1),
                    "encoder": f"{core.dense.backend}/{core.dense.vectors}",
                }
            )
        return lines
    finally:
        await core.close()


async def run_profile_eval(
    settings: Settings, data: BeirDataset, specs: list[ProfileSpec], depth: int, report: Path | None
) -> list[dict[str, Any]]:
    """Evaluate profiles (by name or inline settings); each after the first is compared with it."""
    core = await Knowledge.open(settings)
    try:
        namespace = eval_namespace(data)
        await ensure_ingested(core, data, namespace)
        runs = []
        for spec in specs:
            name, version, effective = core.evaluations.resolve_spec(spec, namespace)
            runs.append(
                await core.evaluations.profile_run(namespace, data.queries, name, version, effective, depth)
            )
        lines: list[dict[str, Any]] = []
        for i, run in enumerate(runs):
            pair = [runs[0], run] if i else [run]
            cmp = await asyncio.to_thread(compare, data.qrels, pair)
            result = cmp.profiles[-1]
            line: dict[str, Any] = {
                "dataset": data.name,
                "profile": result.name,
                "version": result.version,
                **{k: round(v, 4) for k, v in result.metrics.items()},
                "queries": result.queries,
                **{k: round(v, 2) for k, v in result.latency.items() if v is not None},
            }
            if i:
                line.update(
                    {
                        "vs": runs[0].name,
                        "delta": {k: round(v, 4) for k, v in (cmp.delta or {}).items()},
                        "p_value": {k: round(v, 4) for k, v in (cmp.p_value or {}).items()},
                        "wins": cmp.wins,
                        "losses": cmp.losses,
                        "ties": cmp.ties,
                    }
                )
            lines.append(line)
            if report is not None and i == len(runs) - 1:
                html = render_html(
                    cmp,
                    title=f"{data.name}: " + " vs ".join(p.name for p in cmp.profiles),
                    dataset=f"{data.name} ({len(data.queries)} judged queries)",
                )
                write_report(report, html)
        return lines
    finally:
        await core.close()
