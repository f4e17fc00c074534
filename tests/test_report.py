"""HTML comparison report: self-contained, escaped, with the table values and embedded plots."""

from __future__ import annotations

import base64
import re

import pytest

from knowledge_service.pipelines.evaluation.comparison import ProfileRun, compare
from knowledge_service.tools.report import render_html, write_report

QRELS = {f"q{i}": {f"rel{i}": 1} for i in range(12)}
CURRENT = {q: {"noise": 2.0, next(iter(r)): 1.0} for q, r in QRELS.items()}  # relevant at rank 2
CANDIDATE = {q: {next(iter(r)): 2.0, "noise": 1.0} for q, r in list(QRELS.items())[:8]}
CANDIDATE["q9"] = {"noise": 1.0}  # q8, q10, q11 unanswered: losses; q9 retrieved nothing relevant
PNG = 'src="data:image/png;base64,'


@pytest.fixture(scope="module")
def paired():
    runs = [
        ProfileRun("<script>alert(1)</script>", 4, CURRENT, [10.0 + i for i in range(12)]),
        ProfileRun("cost $5 & $6", None, CANDIDATE, [30.0 + 2 * i for i in range(12)]),
    ]
    return compare(QRELS, runs, permutations=500)


@pytest.fixture(scope="module")
def paired_html(paired):
    return render_html(paired, title="Profiles <v4> vs candidate", dataset="scifact & co")


def test_table_values(paired, paired_html):
    current, candidate = paired.profiles
    for profile in (current, candidate):
        for value in profile.metrics.values():
            assert f"<td>{value:.4f}</td>" in paired_html
        assert f"<td>{profile.latency['p50_ms']:.1f}</td>" in paired_html
        assert f"<td>{profile.latency['p99_ms']:.1f}</td>" in paired_html
    for key in paired.metric_keys:
        assert f"<td>{paired.delta[key]:+.4f}</td>" in paired_html
        assert f"<td>{paired.p_value[key]:.4g}</td>" in paired_html
    for header in ("nDCG@10", "recall@100", "MRR@10", "p50 ms", "p99 ms", "p-value"):
        assert header in paired_html
    assert f"{paired.wins} wins, {paired.losses} losses, {paired.ties} ties" in paired_html


def test_self_contained_with_two_plots(paired_html):
    assert paired_html.count(PNG) == 2  # win/loss chart and latency histogram
    assert "http://" not in paired_html and "https://" not in paired_html
    assert not re.search(r"<(link|script)\b", paired_html)
    for encoded in re.findall(r'base64,([A-Za-z0-9+/=]+)"', paired_html):
        assert base64.b64decode(encoded).startswith(b"\x89PNG")


def test_escapes_every_text(paired_html):
    assert "<script>" not in paired_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (v4)" in paired_html
    assert "cost $5 &amp; $6" in paired_html
    assert "Profiles &lt;v4&gt; vs candidate" in paired_html
    assert "scifact &amp; co" in paired_html


def test_single_profile_report():
    result = compare(QRELS, [ProfileRun("only", 1, CURRENT, [5.0, 6.0, 7.0])])
    html = render_html(result, title="one", dataset="d")
    assert html.count(PNG) == 1  # latency only, no win/loss chart
    assert "p-value" not in html and "wins" not in html
    assert f"<td>{result.profiles[0].metrics['ndcg@10']:.4f}</td>" in html


def test_no_latencies_no_plots(tmp_path):
    result = compare(QRELS, [ProfileRun("only", None, CURRENT, [])])
    html = render_html(result, title="t", dataset="d")
    assert PNG not in html and "&ndash;" in html
    path = write_report(tmp_path / "out" / "report.html", html)
    assert path.read_text(encoding="utf-8") == html
