"""Feeding the bench's service: the corpus in batches through a caller, and how soon a write shows.

``ingest_corpus`` times the whole corpus (documents/s and chunks/s as the caller sees them).
``searchable_after_ack`` ingests a document with a word nothing else holds and searches for it
from the moment the ingest is acknowledged until it is found: that delay is how long a write
takes to become visible (zero polls beyond the first when writes are visible on acknowledgement).
Each poll searches a different text, so no poll can be answered from the cache.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections import Counter
from typing import Any

from knowledge_service.pipelines.evaluation.datasets import BeirDataset
from knowledge_service.schemas.search import Mode
from knowledge_service.tools.load import Caller

INGEST_BATCH = 64
PROBES = 5
PROBE_TIMEOUT_S = 30.0


def corpus_documents(data: BeirDataset) -> list[dict[str, Any]]:
    """The corpus as ingest documents (as ``knowledge eval`` ingests it)."""
    return [
        {"id": doc_id, "title": title or None, "text": text or title or doc_id}
        for doc_id, (title, text) in data.corpus.items()
    ]


async def ingest_corpus(caller: Caller, namespace: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    chunks = 0
    started = time.perf_counter()
    for start in range(0, len(docs), INGEST_BATCH):
        for status, n in await caller.ingest(namespace, docs[start : start + INGEST_BATCH]):
            statuses[status] += 1
            chunks += n
    seconds = time.perf_counter() - started
    return {
        "docs": len(docs),
        "chunks": chunks,
        "batch": INGEST_BATCH,
        "statuses": dict(statuses),
        "seconds": round(seconds, 3),
        "docs_per_s": round(len(docs) / seconds, 2),
        "chunks_per_s": round(chunks / seconds, 2),
    }


async def _probe(caller: Caller, namespace: str, mode: Mode) -> tuple[float, float, int]:
    """(ingest call ms, ack-to-found ms, searches it took) for one fresh document."""
    word = "zq" + secrets.token_hex(8)
    doc = {"id": f"bench-probe-{word}", "title": None, "text": f"{word} is the bench's probe document."}
    started = time.perf_counter()
    [(status, _)] = await caller.ingest(namespace, [doc])
    acked = time.perf_counter()
    if status != "created":
        raise RuntimeError(f"the probe document was not created ({status})")
    polls = 0
    while True:
        polls += 1
        found = await caller.search(namespace, f"{word} {polls}", mode)
        now = time.perf_counter()
        if doc["id"] in found.doc_ids:
            return (acked - started) * 1000, (now - acked) * 1000, polls
        if now - acked > PROBE_TIMEOUT_S:
            raise RuntimeError(f"a document acknowledged {PROBE_TIMEOUT_S:g} s ago is still not found")


async def searchable_after_ack(caller: Caller, namespace: str, mode: Mode) -> dict[str, Any]:
    """The median and largest delay, over PROBES single-document ingests, from acknowledgement to
    the document being found by a search (the delay includes that one search's own time)."""
    runs = [await _probe(caller, namespace, mode) for _ in range(PROBES)]
    visible = [v for _, v, _ in runs]
    return {
        "probes": len(runs),
        "ingest_one_ms_median": round(statistics.median(i for i, _, _ in runs), 3),
        "ack_to_searchable_ms_median": round(statistics.median(visible), 3),
        "ack_to_searchable_ms_max": round(max(visible), 3),
        "searches_until_found_max": max(p for _, _, p in runs),
    }
