"""The `knowledge` command: ingest and search against the store directly, and eval on a BEIR folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness import free_port
from knowledge_service.cli.main import app
from knowledge_service.core.config import Settings
from knowledge_service.tools.feed import PROBES


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # Nothing listens on this port, so the CLI opens the store itself.
    return {
        "KNOWLEDGE_DATA_DIR": str(tmp_path / "data"),
        "KNOWLEDGE_HTTP_PORT": str(free_port()),
        "HF_HUB_OFFLINE": "1",
    }


def _json_lines(output: str) -> list[dict]:
    return [json.loads(line[line.index("{") :]) for line in output.splitlines() if '{"' in line]


def test_ingest_folder_then_search(tmp_path: Path, env: dict[str, str]) -> None:
    docs = tmp_path / "docs"
    (docs / "ops").mkdir(parents=True)
    (docs / "ops" / "runbook.md").write_text("# Runbook\n\nRestart the indexer when the queue backs up.")
    (docs / "faq.txt").write_text("Searches are cached for ten minutes.")
    (docs / ".hidden.txt").write_text("never ingested")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(docs), "--namespace", "ops"], env=env)
    assert result.exit_code == 0, result.output
    assert _json_lines(result.output)[-1] == {"namespace": "ops", "via": "store", "created": 2}

    result = runner.invoke(app, ["search", "indexer queue", "-n", "ops", "-k", "1"], env=env)
    assert result.exit_code == 0, result.output
    body = json.loads(result.output[result.output.index("{") :])
    assert [h["doc_id"] for h in body["results"]] == ["ops/runbook.md"]

    result = runner.invoke(app, ["search", "   ", "-n", "ops"], env=env)
    assert result.exit_code == 2 and "query" in result.output


def test_eval_on_a_beir_folder_reuses_its_namespace(tmp_path: Path, env: dict[str, str]) -> None:
    beir = tmp_path / "tiny"
    (beir / "qrels").mkdir(parents=True)
    corpus = {
        "d1": ("Cats", "Cats purr and sleep a lot."),
        "d2": ("Dogs", "Dogs bark at strangers."),
        "d3": ("Stocks", "Markets fell after the rate decision."),
        "d4": ("Rain", "Rain is forecast for the weekend."),
    }
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in corpus.items())
    )
    (beir / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "why do cats purr"})
        + "\n"
        + json.dumps({"_id": "q2", "text": "stock market decline"})
        + "\n"
    )
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")

    runner = CliRunner()
    args = ["eval", "--dataset", str(beir), "--split", "test", "--mode", "hybrid", "--mode", "sparse"]
    first = runner.invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    lines = _json_lines(first.output)
    assert [line["mode"] for line in lines] == ["hybrid", "sparse"]
    for line in lines:
        assert line["queries"] == 2 and line["ndcg@10"] == pytest.approx(1.0)
        assert set(line) >= {"ndcg@10", "recall@100", "mrr@10", "queries"}
    assert lines[0]["ingest"] == {"created": 4}

    again = runner.invoke(app, args[:-2], env=env)
    assert _json_lines(again.output)[0]["ingest"] == {"unchanged": 4}

    report = tmp_path / "report.html"
    compared = runner.invoke(
        app,
        [
            "eval",
            "--dataset",
            str(beir),
            "--profile",
            "default",
            "--settings",  # a score no result reaches: the candidate finds nothing, a known outcome
            '{"mode": "dense", "top_k": 5, "score_threshold": 1e9}',
            "--report",
            str(report),
        ],
        env=env,
    )
    assert compared.exit_code == 0, compared.output
    base, cand = _json_lines(compared.output)
    assert (base["profile"], base["version"], cand["profile"], cand["vs"]) == (
        "default",
        1,
        "settings1",
        "default",
    )
    assert set(cand["delta"]) == set(cand["p_value"]) == {"ndcg@10", "recall@100", "mrr@10"}
    assert (base["ndcg@10"], cand["ndcg@10"], cand["delta"]["ndcg@10"]) == (1.0, 0.0, -1.0)
    assert (cand["wins"], cand["losses"], cand["ties"]) == (0, 2, 0)
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page and "settings1" in page

    bench = runner.invoke(
        app, ["bench", "--dataset", str(beir), "--split", "test", "--queries", "10"], env=env
    )
    assert bench.exit_code == 0, bench.output
    figures = _json_lines(bench.output)[-1]
    run = figures["backends"][Settings().embed_backend]
    paths = run["inprocess_paths"]  # the corpus, and the probe documents of the visibility figure
    assert figures["queries"] == paths["queries"] == 10 and paths["points"] == 4 + PROBES
    assert run["ingest"]["statuses"] == {"created": 4}
    for path in ("engine", "encode", "encode_then_engine", "search_miss", "search_hit"):
        assert 0 < paths[path]["median_ms"] <= paths[path]["p99_ms"]
    assert paths["inprocess_miss_over_encode_plus_engine"] > 0
    assert paths["inprocess_miss_over_encode_then_engine"] > 0

    missing = runner.invoke(app, ["eval", "--dataset", str(beir), "--split", "dev"], env=env)
    assert missing.exit_code == 2 and "test" in missing.output  # names the splits that exist


def test_models_makes_the_configured_exports_ahead_of_serving(tmp_path: Path, env: dict[str, str]) -> None:
    env = {**env, "KNOWLEDGE_MODELS_DIR": str(tmp_path / "exports"), "KNOWLEDGE_EMBED_BACKEND": "onnx"}
    result = CliRunner().invoke(app, ["models"], env=env)
    assert result.exit_code == 0, result.output
    out = _json_lines(result.output)[-1]
    assert out["embed"]["backend"] == "onnx" and out["embed"]["vectors"] == "fp32"
    folder = Path(out["embed"]["export"])
    assert folder.parent == tmp_path / "exports" and (folder / "manifest.json").is_file()

    env["KNOWLEDGE_EMBED_MODEL"] = str(tmp_path / "no-such-model")
    result = CliRunner().invoke(app, ["models"], env=env)
    assert result.exit_code == 2 and "not on this machine" in result.output
