"""`knowledge soak`: a bounded soak of a real ``knowledge serve`` child over loopback HTTP.

For ``minutes`` minutes, requests are sent at fixed rates (open loop: a slow answer never slows
the sending, so it shows as latency), mixing searches that miss (texts never sent before), searches
that hit (a text sent a little earlier), ingests of new documents, re-ingests of documents with
changed text, and deletes. The corpus is the collection's first ``docs`` documents, ingested
before the clock starts, in a namespace of its own that only searches touch (a write moves its
namespace's index version, so searches of the written namespace could never hit the cache); the
writes go to a second namespace. Per minute: requests, errors by kind (429s apart: they are the
service saying it is full), median and p99 of each kind, the searches answered from the cache,
and the child's resident memory.

The verdict says whether there was any error but a 429, how much resident memory grew from the
end of the first minute (warm) to the end, and how far each minute's search p99 strayed from the
median of the minutes' p99s.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

from knowledge_service.core.config import Settings
from knowledge_service.pipelines.evaluation.datasets import BeirDataset
from knowledge_service.tools.bench import capped
from knowledge_service.tools.feed import corpus_documents, ingest_corpus
from knowledge_service.tools.load import HttpCaller, QueryTexts
from knowledge_service.tools.paths import median_p99
from knowledge_service.tools.served import proc_memory_mb, served

NAMESPACE = "soak"  # searched: the corpus, which the writes leave alone so that hits can hit
WRITES = "soak-writes"  # ingested, re-ingested and deleted
# requests per second of each kind
RATES = {"search_miss": 8.0, "search_hit": 8.0, "ingest": 1.0, "reingest": 1.0, "delete": 0.5}
HIT_LAG = 20  # a hit repeats the text of the miss sent this many misses earlier
TIMEOUT_S = 30.0


class Soak:
    def __init__(self, url: str, texts: QueryTexts) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S)
        self.texts = texts
        self.sent: list[str] = []
        self.docs = itertools.count()
        self.live: list[str] = []  # documents the soak ingested and has not deleted
        self.minutes: dict[int, dict[str, Any]] = defaultdict(
            lambda: {
                "latency": defaultdict(list),
                "errors": Counter(),
                "overloaded": Counter(),
                "cache_hits": Counter(),
            }
        )
        self.started = time.monotonic()

    def _request(self, kind: str) -> tuple[str, str, dict[str, Any] | None]:
        docs = f"/v1/namespaces/{WRITES}/documents"
        if kind == "search_miss" or (kind == "search_hit" and len(self.sent) <= HIT_LAG):
            text = self.texts.take(1)[0]
            self.sent.append(text)
            return "POST", f"/v1/namespaces/{NAMESPACE}/search", {"query": text}
        if kind == "search_hit":
            return "POST", f"/v1/namespaces/{NAMESPACE}/search", {"query": self.sent[-HIT_LAG]}
        if kind == "ingest" or not self.live:
            doc_id = f"soak-{next(self.docs)}"
            self.live.append(doc_id)
            return "POST", docs, {"documents": [{"id": doc_id, "text": _text(doc_id, 0)}]}
        if kind == "reingest":
            doc_id = secrets.choice(self.live)
            return "POST", docs, {"documents": [{"id": doc_id, "text": _text(doc_id, time.monotonic_ns())}]}
        doc_id = self.live.pop(secrets.randbelow(len(self.live)))
        return "DELETE", f"{docs}/{doc_id}", None

    async def one(self, kind: str) -> None:
        method, path, body = self._request(kind)
        minute = int((time.monotonic() - self.started) // 60)
        started = time.perf_counter()
        try:
            resp = await self.http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            self.minutes[minute]["errors"][f"{kind}:{type(exc).__name__}"] += 1
            return
        figures = self.minutes[minute]
        if resp.status_code == 429:
            figures["overloaded"][kind] += 1
        elif resp.status_code >= 400:
            figures["errors"][f"{kind}:{resp.status_code}"] += 1
        else:
            figures["latency"][kind].append((time.perf_counter() - started) * 1000)
            if kind.startswith("search"):
                figures["cache_hits"][kind] += bool(resp.json().get("cache_hit"))

    async def run(self, seconds: float, rss: Any, rates: dict[str, float]) -> None:
        tasks: set[asyncio.Task[None]] = set()

        async def sender(kind: str, rate: float) -> None:
            for tick in itertools.count():
                at = self.started + tick / rate
                if at - self.started >= seconds:
                    return
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                task = asyncio.create_task(self.one(kind))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        async def sampler() -> None:
            for minute in itertools.count():
                # a last, shorter minute ends with the run
                end = self.started + min((minute + 1) * 60, seconds)
                await asyncio.sleep(max(0.0, end - time.monotonic()))
                self.minutes[minute]["rss_mb"] = rss()
                if (minute + 1) * 60 >= seconds:
                    return

        await asyncio.gather(sampler(), *(sender(k, r) for k, r in rates.items()))
        await asyncio.gather(*tasks)
        await self.http.aclose()


def _text(doc_id: str, version: int) -> str:
    return f"{doc_id} version {version}: a soak document about retrieval under steady load."


def _summary(minutes: dict[int, dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for minute in sorted(minutes):
        m = minutes[minute]
        row: dict[str, Any] = {"minute": minute + 1, "rss_mb": m.get("rss_mb")}
        for kind, ms in sorted(m["latency"].items()):
            row[kind] = {"requests": len(ms), **median_p99(ms, digits=2)}
            if kind.startswith("search"):
                row[kind]["cache_hits"] = m["cache_hits"][kind]
        row["errors"], row["overloaded_429"] = dict(m["errors"]), dict(m["overloaded"])
        rows.append(row)
    p99s = [r["search_miss"]["p99_ms"] for r in rows if "search_miss" in r]
    rss = [r["rss_mb"] for r in rows if r.get("rss_mb")]
    typical = statistics.median(p99s) if p99s else None
    return {
        "per_minute": rows,
        "verdict": {
            "errors_other_than_429": sum(sum(r["errors"].values()) for r in rows),
            "overloaded_429": sum(sum(r["overloaded_429"].values()) for r in rows),
            "rss_growth_mb_after_minute_1": round(rss[-1] - rss[0], 1) if len(rss) > 1 else None,
            "search_miss_p99_ms_median_of_minutes": typical,
            "search_miss_p99_worst_minute_over_median": round(max(p99s) / typical, 2) if typical else None,
        },
    }


async def run_soak(
    settings: Settings, data: BeirDataset, minutes: float, docs: int, root: Path, *, writes: bool = True
) -> dict[str, Any]:
    """The soak; without ``writes``, searches only (what the resident memory does when the store
    does not grow)."""
    rates = RATES if writes else {k: r for k, r in RATES.items() if k.startswith("search")}
    data = capped(data, docs)
    texts = QueryTexts(list(data.queries.values()))
    models = settings.models_dirs[-1].resolve()
    async with served(root / "soak", settings.embed_backend, models) as child:
        caller = HttpCaller(child.url, 4)
        try:
            loaded = await ingest_corpus(caller, NAMESPACE, corpus_documents(data))
        finally:
            await caller.aclose()
        soak = Soak(child.url, texts)
        await soak.run(minutes * 60, lambda: proc_memory_mb(child.pid, "VmRSS"), rates)
        return {
            "dataset": data.name,
            "backend": settings.embed_backend,
            "minutes": minutes,
            "rates_per_s": rates,
            "corpus": loaded,
            **_summary(soak.minutes),
            "server": {"ready_s": child.ready_s, "peak_rss_mb": child.max_rss_mb()},
        }
