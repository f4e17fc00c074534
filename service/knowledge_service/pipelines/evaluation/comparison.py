"""Compare one or two retrieval profiles on a labelled query set, and gate a profile change.

Metrics come from ``evaluation`` (ir_measures / trec_eval); the two-profile p-values come from a
paired two-sided randomization test (sign flips of per-query differences, ``scipy.stats``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import ir_measures
import numpy as np
from ir_measures import R
from pydantic import BaseModel

from knowledge_service.core.errors import InvalidArgument
from knowledge_service.pipelines.evaluation.scoring import evaluate_per_query

NDCG = "ndcg@10"
MRR = "mrr@10"
TIE_TOLERANCE = 1e-9
GATE_EPSILON = 1e-12  # float noise allowed at the gate's boundary
_RESAMPLE_CELLS = 1_000_000  # resamples x queries held in memory at once by the permutation test


@dataclass
class ProfileRun:
    """One profile's results: query id -> doc id -> score, and one latency per query."""

    name: str
    version: int | None
    run: dict[str, dict[str, float]]
    latencies_ms: list[float] = field(default_factory=list)


class ProfileResult(BaseModel):
    """One profile's mean metrics, latency percentiles and query counts."""

    name: str
    version: int | None
    metrics: dict[str, float]
    latency: dict[str, float | None]
    queries: int
    missing: int  # judged queries the run returned nothing for (each scores 0)
    latencies_ms: list[float] = []


class QueryDelta(BaseModel):
    """One query's nDCG@10 under the current (a) and candidate (b) profile."""

    query_id: str
    a: float
    b: float
    delta: float


class Comparison(BaseModel):
    """Per-profile results and, for two profiles, paired differences (candidate minus current)."""

    profiles: list[ProfileResult]
    metric_keys: list[str]
    permutations: int
    seed: int
    delta: dict[str, float] | None = None
    p_value: dict[str, float] | None = None
    wins: int | None = None
    losses: int | None = None
    ties: int | None = None
    per_query: list[QueryDelta] = []


class GateResult(BaseModel):
    """Whether the candidate profile may replace the current one, and why."""

    passed: bool
    message: str
    delta: float
    p_value: float
    min_delta: float


def compare(
    qrels: dict[str, dict[str, int]],
    runs: list[ProfileRun],
    *,
    k_recall: int = 100,
    permutations: int = 10_000,
    seed: int = 0,
    exponential_gain: bool = False,
) -> Comparison:
    """Evaluate one profile, or two (current first, candidate second) with paired tests.

    Raises:
        InvalidArgument: not one or two runs, no judged queries, or a bad parameter.
    """
    if not 1 <= len(runs) <= 2:
        raise InvalidArgument(f"compare takes one or two runs, got {len(runs)}", field="runs")
    if not qrels:
        raise InvalidArgument("no judged queries to compare on", field="qrels")
    if k_recall < 1:
        raise InvalidArgument(f"k_recall must be >= 1, got {k_recall}", field="k_recall")
    if permutations < 1:
        raise InvalidArgument(f"permutations must be >= 1, got {permutations}", field="permutations")
    keys = [NDCG, f"recall@{k_recall}", MRR]
    query_ids = list(qrels)
    per_query = [_per_query(p.run, qrels, query_ids, k_recall, exponential_gain) for p in runs]
    profiles = [
        ProfileResult(
            name=p.name,
            version=p.version,
            metrics={key: float(values[key].mean()) for key in keys},
            latency=_latency(p),
            queries=len(query_ids),
            missing=sum(1 for q in query_ids if not p.run.get(q)),
            latencies_ms=[float(x) for x in p.latencies_ms],
        )
        for p, values in zip(runs, per_query, strict=True)
    ]
    result = Comparison(profiles=profiles, metric_keys=keys, permutations=permutations, seed=seed)
    if len(runs) == 1:
        return result
    a, b = per_query
    result.delta = {k: profiles[1].metrics[k] - profiles[0].metrics[k] for k in keys}
    result.p_value = {k: _paired_p_value(a[k], b[k], permutations, seed) for k in keys}
    diff = b[NDCG] - a[NDCG]
    result.wins = int(np.sum(diff > TIE_TOLERANCE))
    result.losses = int(np.sum(diff < -TIE_TOLERANCE))
    result.ties = len(diff) - result.wins - result.losses
    rows = [
        QueryDelta(query_id=q, a=float(x), b=float(y), delta=float(y - x))
        for q, x, y in zip(query_ids, a[NDCG], b[NDCG], strict=True)
    ]
    result.per_query = sorted(rows, key=lambda r: (r.delta, r.query_id))
    return result


def gate(comparison: Comparison, min_delta: float) -> GateResult:
    """Pass when the candidate's nDCG@10 is at least the current one's minus ``min_delta``.

    Raises:
        InvalidArgument: ``min_delta`` is negative or not finite, or the comparison is not paired.
    """
    if not math.isfinite(min_delta) or min_delta < 0:
        raise InvalidArgument(f"min_delta must be a number >= 0, got {min_delta}", field="min_delta")
    if len(comparison.profiles) != 2 or comparison.delta is None or comparison.p_value is None:
        raise InvalidArgument("the gate needs a comparison of two profiles (current, candidate)")
    current, candidate = (p.metrics[NDCG] for p in comparison.profiles)
    delta, p_value = comparison.delta[NDCG], comparison.p_value[NDCG]
    passed = delta + min_delta >= -GATE_EPSILON
    verdict = "loses no more than" if passed else "loses more than"
    message = (
        f"candidate nDCG@10 {candidate:.3f} vs current {current:.3f} "
        f"(delta {_short(delta)}, p={p_value:.2g}) {verdict} min_delta {_short(min_delta)}"
    )
    return GateResult(passed=passed, message=message, delta=delta, p_value=p_value, min_delta=min_delta)


def _per_query(
    run: dict[str, dict[str, float]],
    qrels: dict[str, dict[str, int]],
    query_ids: list[str],
    k_recall: int,
    exponential_gain: bool,
) -> dict[str, np.ndarray]:
    """Metric key -> per-query values in ``query_ids`` order; unretrieved queries score 0."""
    scores = evaluate_per_query(run, qrels, exponential_gain=exponential_gain)
    values = {key: np.array([scores[q][key] for q in query_ids]) for key in (NDCG, MRR)}
    recall_key = f"recall@{k_recall}"
    if k_recall == 100:
        values[recall_key] = np.array([scores[q][recall_key] for q in query_ids])
        return values
    # Same filtering as evaluate_per_query: judged queries with at least one document.
    judged_run = {q: {d: float(s) for d, s in docs.items()} for q, docs in run.items() if q in qrels and docs}
    recall = dict.fromkeys(query_ids, 0.0)
    if judged_run:
        for metric in ir_measures.iter_calc([R @ k_recall], qrels, judged_run):
            recall[metric.query_id] = float(metric.value)
    values[recall_key] = np.array([recall[q] for q in query_ids])
    return values


def _latency(profile: ProfileRun) -> dict[str, float | None]:
    """p50 and p99 of the profile's latencies (linear interpolation); None when there are none."""
    latencies = np.asarray(profile.latencies_ms, dtype=float)
    if latencies.size == 0:
        return {"p50_ms": None, "p99_ms": None}
    if not np.all(np.isfinite(latencies)) or np.any(latencies < 0):
        raise InvalidArgument(
            f"profile {profile.name!r}: latencies must be finite and >= 0", field="latencies_ms"
        )
    p50, p99 = np.percentile(latencies, [50, 99])
    return {"p50_ms": float(p50), "p99_ms": float(p99)}


def _paired_p_value(a: np.ndarray, b: np.ndarray, permutations: int, seed: int) -> float:
    """Two-sided p-value of mean(b - a) under random swaps within each pair (exact when small)."""
    from scipy.stats import permutation_test  # slow to import (~1 s); only a paired compare needs it

    result = permutation_test(
        (a, b),
        lambda x, y, axis: np.mean(y - x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=permutations,
        batch=max(1, _RESAMPLE_CELLS // len(a)),
        alternative="two-sided",
        rng=seed,
    )
    return float(min(result.pvalue, 1.0))


def _short(value: float) -> str:
    """A delta rounded to 4 decimals without trailing zeros (-0.011, 0.005, 0)."""
    return f"{round(value, 4) + 0.0:g}"
