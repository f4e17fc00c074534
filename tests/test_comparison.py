"""Profile comparison: metrics, paired randomization test, win/loss counts and the change gate."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from knowledge_service.core.errors import InvalidArgument
from knowledge_service.pipelines.evaluation.comparison import Comparison, ProfileRun, compare, gate

L2_3 = math.log2(3)
# q1: one relevant doc. q2: grades 2 and 1. q3: one relevant doc. q4: one relevant doc.
QRELS = {
    "q1": {"d1": 1, "n1": 0},
    "q2": {"d2": 2, "d3": 1},
    "q3": {"d4": 1},
    "q4": {"d5": 1},
}
# Current (a): q1 at rank 1; q2 in the wrong order; q3 not answered; q4 at rank 1.
RUN_A = {
    "q1": {"d1": 2.0, "x": 1.0},
    "q2": {"d3": 2.0, "d2": 1.0},
    "q4": {"d5": 1.0},
}
# Candidate (b): q1 at rank 2; q2 in the ideal order; q3 at rank 3; q4 unchanged.
RUN_B = {
    "q1": {"x": 2.0, "d1": 1.0},
    "q2": {"d2": 2.0, "d3": 1.0},
    "q3": {"y": 3.0, "z": 2.0, "d4": 1.0},
    "q4": {"d5": 1.0},
    "unjudged": {"d9": 1.0},
}
# nDCG@10 by hand, linear gain (trec_eval): DCG = sum(grade / log2(rank + 1)).
NDCG_A = {"q1": 1.0, "q2": (1 + 2 / L2_3) / (2 + 1 / L2_3), "q3": 0.0, "q4": 1.0}
NDCG_B = {"q1": 1 / L2_3, "q2": 1.0, "q3": 1 / math.log2(4), "q4": 1.0}


def pair(run_a=RUN_A, run_b=RUN_B, **kwargs) -> Comparison:
    a = ProfileRun("current", 3, run_a, [10.0, 12.0, 11.0, 30.0])
    b = ProfileRun("candidate", None, run_b, [20.0, 21.0, 22.0, 23.0])
    return compare(QRELS, [a, b], **kwargs)


def test_hand_computed_ndcg_deltas():
    result = pair()
    current, candidate = result.profiles
    assert current.metrics["ndcg@10"] == pytest.approx(sum(NDCG_A.values()) / 4)
    assert candidate.metrics["ndcg@10"] == pytest.approx(sum(NDCG_B.values()) / 4)
    expected = {q: NDCG_B[q] - NDCG_A[q] for q in QRELS}
    assert result.delta["ndcg@10"] == pytest.approx(sum(expected.values()) / 4)
    assert {r.query_id: r.delta for r in result.per_query} == pytest.approx(expected)
    assert [r.query_id for r in result.per_query] == ["q1", "q4", "q2", "q3"]  # sorted by delta
    assert (result.wins, result.losses, result.ties) == (2, 1, 1)
    assert result.metric_keys == ["ndcg@10", "recall@100", "mrr@10"]
    assert candidate.metrics["mrr@10"] == pytest.approx((1 / 2 + 1 + 1 / 3 + 1) / 4)
    assert current.metrics["recall@100"] == pytest.approx(3 / 4)
    assert candidate.metrics["recall@100"] == 1.0


def test_p_value_matches_exact_sign_flip_enumeration():
    result = pair()
    diffs = [NDCG_B[q] - NDCG_A[q] for q in QRELS]
    observed = abs(sum(diffs))
    flips = [
        sum(s * d for s, d in zip(signs, diffs, strict=True))
        for signs in itertools.product((1, -1), repeat=4)
    ]
    exact = sum(abs(f) >= observed - 1e-12 for f in flips) / len(flips)
    assert exact == pytest.approx(0.75)
    assert result.p_value["ndcg@10"] == pytest.approx(exact)


def test_missing_query_counts_as_zero():
    result = pair()
    current = result.profiles[0]
    assert current.missing == 1 and result.profiles[1].missing == 0
    q3 = next(r for r in result.per_query if r.query_id == "q3")
    assert (q3.a, q3.b) == (0.0, pytest.approx(0.5))
    assert current.queries == 4  # the unjudged query in RUN_B is ignored


def test_identical_runs_have_zero_delta_and_p_one():
    result = pair(RUN_B, RUN_B)
    assert all(d == 0.0 for d in result.delta.values())
    assert all(p == pytest.approx(1.0) for p in result.p_value.values())
    assert (result.wins, result.losses, result.ties) == (0, 0, 4)


def test_clearly_better_run_is_significant():
    qrels = {f"q{i}": {f"rel{i}": 1} for i in range(40)}
    noise = {f"n{j}": 10.0 - j for j in range(4)}
    worse = {q: {**noise, next(iter(r)): 1.0} for q, r in qrels.items()}  # relevant at rank 5
    better = {q: {next(iter(r)): 20.0, **noise} for q, r in qrels.items()}  # relevant at rank 1
    runs = [ProfileRun("a", 1, worse, []), ProfileRun("b", 2, better, [])]
    result = compare(qrels, runs, permutations=2000, seed=7)
    assert result.delta["ndcg@10"] == pytest.approx(1 - 1 / math.log2(6))
    assert result.p_value["ndcg@10"] < 0.05
    assert result.p_value["mrr@10"] < 0.05
    assert result.p_value["recall@100"] == 1.0  # both find every relevant doc
    assert result.wins == 40
    again = compare(qrels, runs, permutations=2000, seed=7)
    assert again.p_value == result.p_value  # a fixed seed reproduces the p-values


def test_recall_cutoff_is_a_parameter():
    result = pair(k_recall=2)
    assert result.metric_keys == ["ndcg@10", "recall@2", "mrr@10"]
    assert result.profiles[1].metrics["recall@2"] == pytest.approx((1 + 1 + 0 + 1) / 4)
    assert "recall@100" not in result.delta


def test_single_profile_and_json():
    result = compare(QRELS, [ProfileRun("only", 1, RUN_A, [5.0, 7.0, 9.0])])
    assert len(result.profiles) == 1
    assert result.delta is None and result.p_value is None and result.per_query == []
    assert result.profiles[0].latency == {"p50_ms": 7.0, "p99_ms": pytest.approx(8.96)}
    assert json.loads(result.model_dump_json())["profiles"][0]["name"] == "only"


def test_latency_percentiles_and_empty_latencies():
    result = pair()
    assert result.profiles[0].latency["p50_ms"] == pytest.approx(11.5)
    assert result.profiles[1].latency["p99_ms"] == pytest.approx(22.97)
    empty = compare(QRELS, [ProfileRun("x", None, RUN_A, [])])
    assert empty.profiles[0].latency == {"p50_ms": None, "p99_ms": None}


def test_gate_pass_and_fail_messages():
    result = pair()  # delta = (−0.369 + 0.140 + 0.5 + 0) / 4 = +0.068
    passed = gate(result, 0.0)
    assert passed.passed
    assert "candidate nDCG@10 0.783 vs current 0.715 (delta 0.0678, p=0.75)" in passed.message
    assert "loses no more than min_delta 0" in passed.message
    failed = gate(pair(RUN_B, RUN_A), 0.005)
    assert not failed.passed
    assert failed.message == (
        "candidate nDCG@10 0.715 vs current 0.783 (delta -0.0678, p=0.75) loses more than min_delta 0.005"
    )
    assert gate(pair(RUN_B, RUN_A), 0.07).passed


def test_gate_boundary_is_inclusive():
    result = pair(RUN_B, RUN_A)
    assert gate(result, -result.delta["ndcg@10"]).passed


@pytest.mark.parametrize("runs", [[], [ProfileRun(n, None, RUN_A, []) for n in "abc"]])
def test_wrong_number_of_runs(runs):
    with pytest.raises(InvalidArgument, match="one or two runs"):
        compare(QRELS, runs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"k_recall": 0}, "k_recall"), ({"permutations": 0}, "permutations")],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        compare(QRELS, [ProfileRun("a", None, RUN_A, [])], **kwargs)


def test_empty_qrels_and_bad_latencies():
    with pytest.raises(InvalidArgument, match="no judged queries"):
        compare({}, [ProfileRun("a", None, RUN_A, [])])
    with pytest.raises(InvalidArgument, match="latencies"):
        compare(QRELS, [ProfileRun("a", None, RUN_A, [1.0, float("nan")])])


@pytest.mark.parametrize("min_delta", [-0.001, float("nan")])
def test_gate_rejects_bad_min_delta(min_delta):
    with pytest.raises(InvalidArgument, match="min_delta") as info:
        gate(pair(), min_delta)
    assert info.value.field == "min_delta"


def test_gate_needs_two_profiles():
    with pytest.raises(InvalidArgument, match="two profiles"):
        gate(compare(QRELS, [ProfileRun("a", None, RUN_A, [])]), 0.01)
