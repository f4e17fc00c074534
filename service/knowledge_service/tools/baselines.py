"""The bench's baselines: the raw encoder alone, in this process, on the texts the service gets.

``query_encode``: queries one at a time (what a cache miss pays for its vector, warm); ``batch_encode``:
texts in batches of BATCH (what an ingest pays). ``passages`` chunks documents exactly as ingest
does (the service's chunker and settings, the title in front of each chunk), so a backend's raw
chunk encode and the service's ingest encode the same passages.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from knowledge_service.core.config import Settings
from knowledge_service.models.base import DenseModel
from knowledge_service.models.chunker import Chunker, passage_text
from knowledge_service.models.registry import Options, load_dense
from knowledge_service.tools.paths import median_p99

BATCH = 32


def load(settings: Settings, backend: str) -> DenseModel:
    return load_dense(settings.embed_model, backend=backend, options=Options.of(settings))


def query_encode(model: DenseModel, queries: list[str]) -> dict[str, Any]:
    """Median and p99 of encoding one query at a time, and the rate that median allows.

    Timed in the steady state, as a served model is after its ingest and warm-up: after one
    untimed pass over the same queries (torch's first call at each new input length costs it
    several times a later one, which would otherwise dominate a few hundred queries).
    """
    for q in queries:
        model.encode([q])
    times = []
    for q in queries:
        started = time.perf_counter()
        model.encode([q])
        times.append((time.perf_counter() - started) * 1000)
    figures = median_p99(times)
    return {"queries": len(times), **figures, "per_s": round(1000 / statistics.median(times), 1)}


def batch_encode(model: DenseModel, texts: list[str]) -> float:
    """Seconds to encode ``texts`` in batches of BATCH (after a few of them as a warm-up)."""
    model.encode(texts[:4])  # lazy initialisation, not a whole batch: small corpora stay cheap
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        model.encode(texts[start : start + BATCH])
    return time.perf_counter() - started


def document_texts(docs: list[dict[str, Any]]) -> list[str]:
    """Whole documents as one text each (title first): the model truncates what is too long."""
    return [passage_text(d["title"], d["text"]) for d in docs]


def passages(model: DenseModel, settings: Settings, docs: list[dict[str, Any]]) -> list[str]:
    chunker = Chunker(model.tokenizer(), settings.chunk_tokens, settings.chunk_overlap)
    return [passage_text(d["title"], c) for d in docs for c in chunker.split(d["text"])]


def documents_encode(model: DenseModel, docs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = batch_encode(model, document_texts(docs))
    return {
        "docs": len(docs),
        "batch": BATCH,
        "seconds": round(seconds, 3),
        "docs_per_s": round(len(docs) / seconds, 2),
    }


def chunks_encode(model: DenseModel, settings: Settings, docs: list[dict[str, Any]]) -> dict[str, Any]:
    texts = passages(model, settings, docs)
    seconds = batch_encode(model, texts)
    return {
        "docs": len(docs),
        "chunks": len(texts),
        "batch": BATCH,
        "seconds": round(seconds, 3),
        "chunks_per_s": round(len(texts) / seconds, 2),
        "docs_per_s": round(len(docs) / seconds, 2),
    }
