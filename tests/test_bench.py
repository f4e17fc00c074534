"""`knowledge bench --transport grpc`: a real `knowledge serve` child, fed and searched over gRPC.

Checks that every figure is there and that nothing failed; never how fast anything was.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from conftest import dataset
from knowledge_service.cli.main import app
from knowledge_service.core.config import Settings
from knowledge_service.tools.feed import PROBES


def _is_timing(figures: dict) -> bool:
    return 0 < figures["median_ms"] <= figures["p99_ms"] and figures["per_s"] > 0


def test_bench_over_grpc_reports_every_figure_without_errors(tmp_path: Path) -> None:
    stores = tmp_path / "stores"
    args = ["bench", "--dataset", str(dataset("scifact")), "--split", "train", "--docs", "30"]
    args += ["--queries", "10", "--transport", "grpc", "--concurrency", "1", "--concurrency", "2"]
    args += ["--data-dir", str(stores)]
    env = {"KNOWLEDGE_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    line = [line for line in result.output.splitlines() if '{"' in line][-1]
    out = json.loads(line[line.index('{"') :])

    assert (out["transport"], out["docs"], out["queries"], out["concurrency"]) == ("grpc", 30, 10, [1, 2])
    assert _is_timing(out["baseline_torch"]["query_encode"])
    assert out["baseline_torch"]["docs_encode"]["docs_per_s"] > 0
    backend = Settings().embed_backend
    assert list(out["backends"]) == [backend]  # the configured backend
    run = out["backends"][backend]
    assert _is_timing(run["raw"]["query_encode"]) and run["raw"]["chunks_encode"]["chunks_per_s"] > 0

    ingest = run["ingest"]
    assert ingest["statuses"] == {"created": 30} and ingest["chunks_as_raw"]
    assert ingest["docs_per_s"] > 0 and ingest["chunks_per_s"] > 0
    assert ingest["docs_per_s_over_raw_chunks_encode"] > 0 and ingest["docs_per_s_over_torch_docs_encode"] > 0
    assert ingest["visibility"]["probes"] == PROBES and ingest["visibility"]["ack_to_searchable_ms_max"] > 0

    assert set(run["load"]) == {"1", "2"}
    for level in run["load"].values():
        miss, hit = level["miss"], level["hit"]
        assert miss["requests"] == miss["completed"] == hit["completed"] == 10
        assert miss["errors"] == hit["errors"] == 0
        assert (miss["cache_hits"], hit["cache_hits"]) == (0, 10)  # misses were misses, hits hits
        assert _is_timing(miss) and _is_timing(hit)
        assert level["ratios"]["grpc_miss_p50_over_torch_encode"] > 0
        assert level["ratios"]["misses_per_s_over_torch_encode_rate"] > 0
        floor = level["transport_floor"]  # gRPC alone, answering a real answer: every call a "hit"
        assert floor["completed"] == 10 and floor["errors"] == 0 and floor["cache_hits"] == 10
        assert _is_timing(floor) and level["hit_p50_over_floor"] > 0 and level["hits_per_s_over_floor"] > 0

    assert run["server"]["max_rss_mb"] > 0 and out["memory"]["bench_max_rss_mb"] > 0
    assert (stores / backend).is_dir()  # the child's store, where it was told to keep it
    assert not Path(f"/proc/{run['server']['pid']}").exists()  # the child is gone (and reaped)
