"""Scoring runs against judgments with ir_measures (trec_eval's definitions), per query and in mean."""

from __future__ import annotations

from collections.abc import Iterable

import ir_measures
from ir_measures import RR, R, nDCG

from knowledge_service.core.errors import InvalidArgument

METRIC_KEYS = ("ndcg@10", "recall@100", "mrr@10")


def evaluate_per_query(
    run: dict[str, dict[str, float]],
    qrels: dict[str, dict[str, int]],
    *,
    exponential_gain: bool = False,
) -> dict[str, dict[str, float]]:
    """Metrics for every judged query (ir_measures / trec_eval); unretrieved queries score 0.

    ``ndcg@10`` uses trec_eval's linear gain (the grade, as in BEIR) unless ``exponential_gain``
    asks for 2**grade - 1. ``mrr@10`` and ``recall@100`` count grade >= 1 as relevant.
    """
    ndcg = nDCG @ 10
    if exponential_gain:
        grades = {g for judged in qrels.values() for g in judged.values()}
        ndcg = nDCG(cutoff=10, gains={g: max(2**g - 1, 0) for g in grades})
    names = {ndcg: "ndcg@10", R @ 100: "recall@100", RR @ 10: "mrr@10"}
    results = {qid: dict.fromkeys(METRIC_KEYS, 0.0) for qid in qrels}
    judged_run = {
        qid: {doc: float(score) for doc, score in docs.items()}
        for qid, docs in run.items()
        if qid in qrels and docs
    }
    if judged_run:
        for metric in ir_measures.iter_calc(list(names), qrels, judged_run):
            results[metric.query_id][names[metric.measure]] = float(metric.value)
    return results


def evaluate(
    run: dict[str, dict[str, float]],
    qrels: dict[str, dict[str, int]],
    *,
    exponential_gain: bool = False,
) -> dict[str, float]:
    """Mean ``ndcg@10``, ``recall@100``, ``mrr@10`` over the judged queries, and ``queries``."""
    if not qrels:
        raise InvalidArgument("no judged queries to evaluate")
    per_query = evaluate_per_query(run, qrels, exponential_gain=exponential_gain)
    means = {key: sum(m[key] for m in per_query.values()) / len(per_query) for key in METRIC_KEYS}
    return {**means, "queries": float(len(per_query))}


def collapse_to_documents(hits: Iterable[tuple[str, float]], limit: int) -> dict[str, float]:
    """Chunk hits in rank order -> each document's first hit, scored 1/rank, at most ``limit``.

    Chunk scores are dropped: after fusion or reranking they are not comparable across stages,
    and only their order is trusted. 1/rank is strictly decreasing, so evaluating the result
    reproduces the service's document order exactly (no ties for trec_eval to reorder).
    """
    if limit < 1:
        raise InvalidArgument(f"limit must be >= 1, got {limit}", field="limit")
    documents: dict[str, float] = {}
    for doc_id, _score in hits:
        if doc_id not in documents:
            documents[doc_id] = 1.0 / (len(documents) + 1)
            if len(documents) == limit:
                break
    return documents
