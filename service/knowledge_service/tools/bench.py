"""`knowledge bench`: search and ingest figures on a BEIR collection, against the raw encoder.

For each backend (``--backend``, repeatable; each with its own data dir, since vectors differ) the
first ``--docs`` documents are ingested and searched through one transport: ``inprocess`` (the
core in this process), ``grpc`` or ``http`` (a real ``knowledge serve`` child, served.py). For
each concurrency N, N closed-loop workers send queries never searched before (misses), then the
same again (hits); median, p99, throughput and errors of each are reported (load.py). The ingest
is timed, and so is the delay from an ingest's acknowledgement to the document being found
(feed.py). Each run ingests into a namespace of its own, so nothing it searches was cached before.

Baselines come from the same run, in this process (baselines.py): torch fp32 encoding queries one
at a time and the documents in batches, and each backend's own raw query and chunk encode. In
process, the paths of one search are also timed apart (paths.py). Through gRPC, the same
caller also drives an echo server (echo.py: gRPC alone, answering a captured real answer) at each
concurrency: the transport's own floor, which cache hits are compared with.

Figures: ``baseline_torch``, then ``backends.<backend>`` with ``raw`` (its encoder alone),
``ingest`` (with ``visibility``), ``load.<N>.{miss,hit,ratios}`` (through gRPC also
``transport_floor`` and the hits' ratios to it), and ``server`` (a child's readiness time and peak
memory) or ``inprocess_paths``; ``memory`` is this process's peak.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import secrets
import tempfile
from pathlib import Path
from typing import Any, Literal

from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.models.registry import DENSE
from knowledge_service.pipelines.evaluation.datasets import BeirDataset
from knowledge_service.schemas.search import Mode
from knowledge_service.tools import baselines
from knowledge_service.tools.echo import echo_server
from knowledge_service.tools.feed import corpus_documents, ingest_corpus, searchable_after_ack
from knowledge_service.tools.load import Caller, GrpcCaller, HttpCaller, InProcessCaller, QueryTexts, drive
from knowledge_service.tools.paths import inprocess_paths, ratio
from knowledge_service.tools.served import proc_memory_mb, served

Transport = Literal["inprocess", "grpc", "http"]
TRANSPORTS: tuple[Transport, ...] = ("inprocess", "grpc", "http")
WARM_UP = 10  # searches (misses, not counted) before the first timed phase


def capped(data: BeirDataset, docs: int | None) -> BeirDataset:
    """The collection with its first ``docs`` documents only (all of them for None)."""
    if docs is None or docs >= len(data.corpus):
        return data
    return dataclasses.replace(data, corpus=dict(list(data.corpus.items())[:docs]))


def settings_for(settings: Settings, **changes: Any) -> Settings:
    return type(settings)(**{**settings.model_dump(), **changes})


async def run_bench(
    settings: Settings,
    data: BeirDataset,
    n: int,
    mode: Mode,
    *,
    transport: Transport = "inprocess",
    concurrency: list[int] | None = None,
    backends: list[str] | None = None,
    docs: int | None = 1000,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """Every figure of the run as one JSON-ready object (see the module docstring)."""
    levels = sorted(set(concurrency or [1]))
    backends = list(dict.fromkeys(backends or [settings.embed_backend]))
    unknown = [b for b in backends if b not in DENSE]
    if unknown:
        raise ValueError(f"--backend: one of {', '.join(DENSE)} (got {', '.join(map(repr, unknown))})")
    settings = settings_for(settings, models_dir=settings.models_dirs[-1].resolve())
    data = capped(data, docs)
    corpus = corpus_documents(data)
    texts = QueryTexts(list(data.queries.values()))
    out: dict[str, Any] = {
        "dataset": data.name,
        "docs": len(corpus),
        "queries": n,
        "mode": mode,
        "transport": transport,
        "concurrency": levels,
        "machine": {"cpus": os.cpu_count(), "load_avg_1m_start": round(os.getloadavg()[0], 2)},
    }
    torch, raw = _baselines(settings, backends, texts.take(n), corpus)
    out["baseline_torch"] = torch
    out["backends"] = {}
    with tempfile.TemporaryDirectory(prefix="knowledge-bench-") as tmp:
        root = (data_dir or Path(tmp)).resolve()
        for backend in backends:
            run = _Run(settings_for(settings, data_dir=root / backend, embed_backend=backend), data, n, mode)
            figures = {"vectors": raw[backend]["vectors"], "raw": raw[backend]}
            figures.update(await run.go(transport, levels, corpus, texts))
            _add_ratios(figures, torch, transport)
            out["backends"][backend] = figures
    out["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    out["memory"] = {"bench_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    return out


def _baselines(
    settings: Settings, backends: list[str], queries: list[str], corpus: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """torch's query and document encode, and each backend's raw query and chunk encode."""
    torch = baselines.load(settings, "torch")
    figures = {
        "vectors": torch.vectors,
        "query_encode": baselines.query_encode(torch, queries),
        "docs_encode": baselines.documents_encode(torch, corpus),
    }
    raw = {}
    for backend in backends:
        model = torch if backend == "torch" else baselines.load(settings, backend)
        raw[backend] = {
            "vectors": model.vectors,
            "query_encode": figures["query_encode"]
            if model is torch
            else baselines.query_encode(model, queries),
            "chunks_encode": baselines.chunks_encode(model, settings, corpus),
        }
        del model
    return figures, raw


def _add_ratios(figures: dict[str, Any], torch: dict[str, Any], transport: str) -> None:
    own, ingest = figures["raw"], figures["ingest"]
    ingest["docs_per_s_over_raw_chunks_encode"] = ratio(
        ingest["docs_per_s"], own["chunks_encode"]["docs_per_s"]
    )
    ingest["docs_per_s_over_torch_docs_encode"] = ratio(
        ingest["docs_per_s"], torch["docs_encode"]["docs_per_s"]
    )
    ingest["chunks_as_raw"] = ingest["chunks"] == own["chunks_encode"]["chunks"]
    for level in figures["load"].values():
        miss = level["miss"]
        level["ratios"] = {
            f"{transport}_miss_p50_over_torch_encode": ratio(
                miss.get("median_ms"), torch["query_encode"]["median_ms"]
            ),
            f"{transport}_miss_p50_over_raw_encode": ratio(
                miss.get("median_ms"), own["query_encode"]["median_ms"]
            ),
            "misses_per_s_over_torch_encode_rate": ratio(miss["per_s"], torch["query_encode"]["per_s"]),
            "misses_per_s_over_raw_encode_rate": ratio(miss["per_s"], own["query_encode"]["per_s"]),
        }
    paths = figures.get("inprocess_paths")
    if paths:
        base = paths["encode"]["median_ms"] + paths["engine"]["median_ms"]
        paths["inprocess_miss_over_encode_plus_engine"] = ratio(paths["search_miss"]["median_ms"], base)
        paths["inprocess_miss_over_encode_then_engine"] = ratio(
            paths["search_miss"]["median_ms"], paths["encode_then_engine"]["median_ms"]
        )


@dataclasses.dataclass
class _Run:
    """One backend through one transport."""

    settings: Settings
    data: BeirDataset
    n: int
    mode: Mode

    async def go(
        self, transport: Transport, levels: list[int], corpus: list[dict[str, Any]], texts: QueryTexts
    ) -> dict[str, Any]:
        namespace = f"bench-{self.data.name[:30]}-{secrets.token_hex(4)}"  # this run's only: nothing cached
        s = self.settings
        if transport == "inprocess":
            core = await Knowledge.open(s)
            try:
                figures = await self.exercise(InProcessCaller(core), namespace, levels, corpus, texts)
                figures["inprocess_paths"] = await inprocess_paths(
                    core, namespace, texts.take(self.n), self.mode
                )
                figures["memory"] = {"bench_max_rss_mb_so_far": proc_memory_mb()}
                return figures
            finally:
                await core.close()
        async with served(s.data_dir, s.embed_backend, s.models_dirs[-1]) as child:
            caller: Caller = (
                GrpcCaller(child.grpc_target) if transport == "grpc" else HttpCaller(child.url, max(levels))
            )
            try:
                figures = await self.exercise(caller, namespace, levels, corpus, texts)
                if isinstance(caller, GrpcCaller):
                    await self.transport_floor(caller, namespace, figures["load"], texts)
            finally:
                await caller.aclose()
            figures["server"] = {"pid": child.pid, "ready_s": child.ready_s, "max_rss_mb": child.max_rss_mb()}
            return figures

    async def transport_floor(
        self, caller: GrpcCaller, namespace: str, load: dict[str, Any], texts: QueryTexts
    ) -> None:
        """At each concurrency, the same caller against gRPC alone (echo.py) answering a real
        answer of this run; ``hit_*_over_floor`` compare the served hits with it."""
        query = texts.take(1)[0]
        await caller.search(namespace, query, self.mode)
        answer = await caller.answer(namespace, query, self.mode)  # a cache hit, as it travels
        with tempfile.TemporaryDirectory(prefix="knowledge-echo-") as tmp:
            async with echo_server(answer, Path(tmp)) as target:
                echo = GrpcCaller(target)
                try:
                    await drive(echo, namespace, self.mode, texts.take(WARM_UP), 1)
                    for level, figures in load.items():
                        floor = (
                            await drive(echo, namespace, self.mode, texts.take(self.n), int(level))
                        ).summary()
                        hit = figures["hit"]
                        figures["transport_floor"] = floor
                        figures["hit_p50_over_floor"] = ratio(hit.get("median_ms"), floor.get("median_ms"))
                        figures["hits_per_s_over_floor"] = ratio(hit["per_s"], floor["per_s"])
                finally:
                    await echo.aclose()

    async def exercise(
        self,
        caller: Caller,
        namespace: str,
        levels: list[int],
        corpus: list[dict[str, Any]],
        texts: QueryTexts,
    ) -> dict[str, Any]:
        ingest = await ingest_corpus(caller, namespace, corpus)
        ingest["visibility"] = await searchable_after_ack(caller, namespace, "sparse")
        await drive(caller, namespace, self.mode, texts.take(WARM_UP), 1)
        load: dict[str, Any] = {}
        for level in levels:
            batch = texts.take(self.n)
            miss = (await drive(caller, namespace, self.mode, batch, level)).summary()
            hit = (await drive(caller, namespace, self.mode, batch, level)).summary()
            load[str(level)] = {"miss": miss, "hit": hit}
        return {"namespace": namespace, "ingest": ingest, "load": load}
