"""`knowledge scale` and `knowledge soak` on tiny runs: every figure is there and nothing failed;
never how fast anything was."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from conftest import dataset
from knowledge_service.cli.main import app


def _run(args: list[str], tmp_path: Path) -> dict:
    env = {"KNOWLEDGE_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    # the figures are stdout's last line; logs (an ONNX export's warnings, say) go to stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_scale_reports_each_size_and_the_probe_while_optimising(tmp_path: Path) -> None:
    args = ["scale", "--dataset", str(dataset("scifact")), "--split", "train", "--size", "300"]
    args += ["--queries", "10", "--concurrency", "2", "--data-dir", str(tmp_path / "stores")]
    out = _run(args, tmp_path)
    figures = out["sizes"]["300"]
    assert figures["chunks"] == 300 and figures["build"]["docs_per_s"] > 0
    assert figures["bm25"]["rank_bm25"]["median_ms"] > 0 and figures["bm25"]["rank_bm25_over_sidecar"] > 0
    served = figures["served"]
    for state in ("unoptimised", "optimised"):
        for level in ("1", "2"):
            phase = served[state]["hybrid_miss"][level]
            assert phase["completed"] == 10 and phase["errors"] == 0
        assert served[state]["rss_mb"] > 0
    optimising = served["while_optimising"]
    assert optimising["swapped_in"] is True
    probe = optimising["probe"]
    assert probe["errors"] == {} and probe["healthz"]["requests"] > 0
    assert figures["p50_ms_at_1_client"]["optimised"] > 0


def test_soak_reports_each_minute_without_errors(tmp_path: Path) -> None:
    args = ["soak", "--dataset", str(dataset("scifact")), "--split", "train", "--minutes", "0.5"]
    args += ["--docs", "20", "--data-dir", str(tmp_path / "stores")]
    out = _run(args, tmp_path)
    assert out["corpus"]["statuses"] == {"created": 20}
    (minute,) = out["per_minute"]
    for kind in ("search_miss", "search_hit", "ingest", "reingest", "delete"):
        assert minute[kind]["requests"] > 0, kind
    assert minute["search_hit"]["cache_hits"] > 0 and minute["search_miss"]["cache_hits"] == 0
    assert out["verdict"]["errors_other_than_429"] == 0
    assert minute["rss_mb"] > 0
