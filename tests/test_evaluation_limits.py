"""Evaluations and the require_eval gate: which files they may read, what their errors say, and
how much work they may do (real core, real model, real HTTP server)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import DATASETS
from knowledge_service.app import Knowledge
from knowledge_service.pipelines.evaluation import evaluations
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.evaluations import EvaluationRequest

DOCS = [{"id": f"d{i}", "text": f"Note {i} covers subject {i % 3} of the runbook."} for i in range(9)]
QUERIES = {f"q{i}": f"subject {i} of the runbook" for i in range(3)}
QRELS = {f"q{i}": {f"d{j}": 1 for j in range(9) if j % 3 == i} for i in range(3)}
SECRET = "hunter2"
ABSOLUTE_PATH = re.compile(r"(?:^|[\s'\"(=:])/\w")


@pytest.fixture
def settings(settings, request):
    """The shared settings, with a test's overrides (``indirect`` parametrisation)."""
    return settings.model_copy(update=getattr(request, "param", {}))


@pytest.fixture
async def http(http_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=http_url, timeout=120) as client:
        yield client


@pytest.fixture
async def kb(core: Knowledge) -> str:
    await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
    return "kb"


@pytest.fixture
def root(core: Knowledge, tmp_path: Path) -> Path:
    """KNOWLEDGE_EVAL_DATASETS_DIR set to a folder holding one good dataset, "toy"."""
    folder = tmp_path / "datasets"
    write_beir(folder / "toy")
    core.evaluations.datasets_dir = folder
    return folder


def write_beir(
    folder: Path,
    queries: dict[str, str] = QUERIES,
    qrels: dict[str, dict[str, int]] = QRELS,
    *,
    corpus: bool = True,
) -> Path:
    (folder / "qrels").mkdir(parents=True)
    if corpus:
        (folder / "corpus.jsonl").write_text(
            "".join(json.dumps({"_id": d["id"], "text": d["text"]}) + "\n" for d in DOCS)
        )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    )
    lines = (f"{q}\t{d}\t{g}\n" for q, judged in qrels.items() for d, g in judged.items())
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(lines))
    return folder


def evaluation(**source: Any) -> dict[str, Any]:
    return {"namespace": "kb", "split": "test", "profiles": [{"name": "default"}], **source}


def gated(*, passing: bool = False, **source: Any) -> dict[str, Any]:
    """A profile change gated on ``source``: one that loses everything, or (passing) any change."""
    settings = {"fusion": {"method": "dbsf"}} if passing else {"score_threshold": 1e9}
    rule = {"namespace": "kb", "split": "test", "min_delta": 1.0 if passing else 0.01, **source}
    return {"settings": settings, "require_eval": rule}


def refused(r: httpx.Response, *words: str, status: int = 422) -> str:
    assert r.status_code == status, r.text
    message = r.json()["error"]["message"]
    for word in words:
        assert word in message, message
    return message


def discreet(message: str, *never: str) -> None:
    """The message quotes no secret and names no absolute path."""
    for text in (SECRET, *never):
        assert text not in message, message
    assert not ABSOLUTE_PATH.search(message), message


class BlockFirstCall:
    """Wraps an async function: its first call waits for ``release`` (inside the caller's slots)."""

    def __init__(self, inner: Callable[..., Any]) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            await self.release.wait()
        return await self.inner(*args, **kwargs)


# --- confinement -------------------------------------------------------------------------------


async def test_without_a_datasets_folder_no_server_path_is_read_but_uploads_work(
    http: httpx.AsyncClient, kb: str, tmp_path: Path
) -> None:
    beir = write_beir(tmp_path / "beir")
    for dataset in [str(beir), "beir", str(DATASETS / "scifact"), "/etc"]:
        for r in [
            await http.post("/v1/evaluations", json=evaluation(dataset=dataset)),
            await http.put("/v1/profiles/default", json=gated(dataset=dataset)),
        ]:
            message = refused(r, "KNOWLEDGE_EVAL_DATASETS_DIR", "upload queries and qrels")
            discreet(message, str(tmp_path))
    assert (await http.get("/v1/profiles/default")).json()["version"] == 1

    r = await http.post("/v1/evaluations", json=evaluation(queries=QUERIES, qrels=QRELS))
    assert r.status_code == 200, r.text
    assert r.json()["profiles"][0]["queries"] == 3 and r.json()["profiles"][0]["metrics"]["ndcg@10"] > 0
    r = await http.put("/v1/profiles/default", json=gated(queries=QUERIES, qrels=QRELS))
    refused(r, "loses more than min_delta", status=412)
    r = await http.put("/v1/profiles/default", json=gated(passing=True, queries=QUERIES, qrels=QRELS))
    assert r.status_code == 200 and r.json()["version"] == 2, r.text


async def test_a_folder_inside_the_datasets_folder_is_evaluated(
    http: httpx.AsyncClient, kb: str, root: Path
) -> None:
    for dataset in ["toy", str(root / "toy"), "toy/../toy"]:
        r = await http.post("/v1/evaluations", json=evaluation(dataset=dataset))
        assert r.status_code == 200, r.text
        assert r.json()["profiles"][0]["queries"] == 3
    refused(await http.put("/v1/profiles/default", json=gated(dataset="toy")), "nDCG@10", status=412)
    r = await http.put("/v1/profiles/default", json=gated(passing=True, dataset="toy"))
    assert r.status_code == 200 and r.json()["version"] == 2, r.text


async def test_server_side_evaluations_never_read_the_corpus(
    http: httpx.AsyncClient, kb: str, root: Path, tmp_path: Path
) -> None:
    (root / "toy" / "corpus.jsonl").unlink()
    r = await http.post("/v1/evaluations", json=evaluation(dataset="toy"))
    assert r.status_code == 200, r.text
    (tmp_path / "elsewhere.jsonl").write_text(SECRET)
    (root / "toy" / "corpus.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")  # not even resolved
    r = await http.post("/v1/evaluations", json=evaluation(dataset="toy"))
    assert r.status_code == 200, r.text


async def test_dataset_files_are_read_off_the_event_loop(
    core: Knowledge, kb: str, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    real = evaluations.load_beir

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluations, "load_beir", spy)
    await core.evaluations.evaluate(EvaluationRequest(**evaluation(dataset=str(root / "toy"))))
    assert threads and threads[0] is not threading.current_thread()


async def test_escapes_from_the_datasets_folder_are_refused_without_naming_the_outside(
    http: httpx.AsyncClient, kb: str, root: Path, tmp_path: Path
) -> None:
    outside = write_beir(tmp_path / "outside-secret-place")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    for name, rel in [
        ("queries-link", "queries.jsonl"),
        ("qrels-link", "qrels/test.tsv"),
        ("qrels-dir-link", "qrels"),
    ]:
        folder = write_beir(root / name)
        target = folder / rel
        if target.is_dir():
            for f in target.iterdir():
                f.unlink()
            target.rmdir()
        else:
            target.unlink()
        target.symlink_to(outside / rel)
    cases = [
        "../outside-secret-place",
        str(outside),
        "toy/../../outside-secret-place",
        "linked",
        str(root / "linked"),
        "queries-link",
        "qrels-link",
        "qrels-dir-link",
    ]
    for dataset in cases:
        for r in [
            await http.post("/v1/evaluations", json=evaluation(dataset=dataset)),
            await http.put("/v1/profiles/default", json=gated(passing=True, dataset=dataset)),
        ]:
            message = refused(r, "the evaluation datasets folder (KNOWLEDGE_EVAL_DATASETS_DIR)")
            discreet(message, "outside-secret-place", str(tmp_path))
    assert (await http.get("/v1/profiles/default")).json()["version"] == 1


# --- messages ----------------------------------------------------------------------------------


async def test_malformed_files_never_show_up_in_the_message(
    http: httpx.AsyncClient, kb: str, root: Path
) -> None:
    def planted(name: str, rel: str, data: bytes) -> str:
        folder = write_beir(root / name)
        with (folder / rel).open("ab") as handle:
            handle.write(data)
        return str(folder)  # an absolute path inside the root: it must not come back either

    cases = {
        planted("qrels-line", "qrels/test.tsv", f"db_password={SECRET}\n".encode()): (
            "dataset 'qrels-line': qrels/test.tsv line 11: expected 'query-id<TAB>corpus-id<TAB>score'"
        ),
        planted("qrels-grade", "qrels/test.tsv", f"q1\td1\t{SECRET}\n".encode()): (
            "dataset 'qrels-grade': qrels/test.tsv line 11: expected"
        ),
        planted("qrels-field", "qrels/test.tsv", f"q1\t{SECRET * 30_000}\t1\n".encode()): (
            "dataset 'qrels-field': qrels/test.tsv line 11: expected"
        ),
        planted("json-line", "queries.jsonl", f'{{"_id": "q9", "text": "db_password={SECRET}"\n'.encode()): (
            "dataset 'json-line': queries.jsonl line 4: not valid JSON"
        ),
        planted("json-list", "queries.jsonl", f'["db_password={SECRET}"]\n'.encode()): (
            "dataset 'json-list': queries.jsonl line 4: expected a JSON object with an '_id'"
        ),
        planted("json-bytes", "queries.jsonl", b'{"_id": "\xff' + SECRET.encode() + b'"}\n'): (
            "dataset 'json-bytes': queries.jsonl line 4: not UTF-8 text"
        ),
        planted("json-deep", "queries.jsonl", b"[" * 200_000 + SECRET.encode() + b"\n"): (
            "dataset 'json-deep': queries.jsonl line 4: not valid JSON"
        ),
        planted("unknown-ids", "qrels/test.tsv", f"{SECRET}\td1\t1\n{SECRET}-2\td2\t1\n".encode()): (
            "dataset 'unknown-ids': 2 of the 5 judged queries in qrels/test.tsv have no text in queries.jsonl"
        ),
    }
    for dataset, expected in cases.items():
        for r, prefix in [
            (await http.post("/v1/evaluations", json=evaluation(dataset=dataset)), ""),
            (await http.put("/v1/profiles/default", json=gated(dataset=dataset)), "require_eval: "),
        ]:
            discreet(refused(r, prefix + expected), str(root))
    r = await http.post("/v1/evaluations", json=evaluation(dataset="toy", split="../../etc/passwd"))
    discreet(refused(r, "split: must name a qrels file"), "passwd")


# --- limits ------------------------------------------------------------------------------------


async def test_over_limit_datasets_are_refused_naming_the_limit(
    http: httpx.AsyncClient, kb: str, root: Path
) -> None:
    many = {f"q{i}": f"subject {i % 3}" for i in range(5_001)}
    write_beir(root / "many-queries", many, {q: {"d1": 1} for q in many})
    judged = {f"q{i}": {f"d{j}": 1 for j in range(5_001)} for i in range(100)}  # 500,100 judgments
    write_beir(root / "many-judgments", dict.fromkeys(judged, "subject 1"), judged)
    over = 64 * 2**20 + 1
    for name, rel in [("big-queries", "queries.jsonl"), ("big-qrels", "qrels/test.tsv")]:
        with (write_beir(root / name) / rel).open("r+b") as handle:
            handle.truncate(over)  # sparse: no disk used, and never read
    for name, words in [
        ("many-queries", ["more than 5000 queries", "MAX_EVAL_QUERIES"]),
        ("many-judgments", ["more than 500000 judgments", "MAX_EVAL_JUDGMENTS"]),
        ("big-queries", ["queries.jsonl is over 64 MiB", "MAX_EVAL_FILE_BYTES"]),
        ("big-qrels", ["qrels/test.tsv is over 64 MiB", "MAX_EVAL_FILE_BYTES"]),
    ]:
        dataset = str(root / name)
        for r in [
            await http.post("/v1/evaluations", json=evaluation(dataset=dataset)),
            await http.put("/v1/profiles/default", json=gated(dataset=dataset)),
        ]:
            discreet(refused(r, f"dataset '{name}'", *words), str(root))


async def test_over_limit_uploads_are_refused_naming_the_limit(http: httpx.AsyncClient, kb: str) -> None:
    many = {f"q{i}": "subject 1" for i in range(5_001)}
    judged = {f"q{i}": {f"d{j}": 1 for j in range(5_001)} for i in range(100)}
    for source, words in [
        ({"queries": many, "qrels": QRELS}, ["queries: at most 5000 queries", "MAX_EVAL_QUERIES"]),
        (
            {"queries": QUERIES, "qrels": {q: {"d1": 1} for q in many}},
            ["qrels: at most 5000", "MAX_EVAL_QUERIES"],
        ),
        (
            {"queries": dict.fromkeys(judged, "subject 1"), "qrels": judged},
            ["qrels: at most 500000 judgments", "MAX_EVAL_JUDGMENTS"],
        ),
    ]:
        refused(await http.post("/v1/evaluations", json=evaluation(**source)), *words)
        refused(await http.put("/v1/profiles/default", json=gated(**source)), "require_eval", *words)


# --- concurrency -------------------------------------------------------------------------------


async def test_a_second_evaluation_while_one_runs_is_refused_with_429(
    http: httpx.AsyncClient, kb: str, core: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = BlockFirstCall(core.searcher._traced)
    monkeypatch.setattr(core.searcher, "_traced", blocker)
    upload = {"queries": QUERIES, "qrels": QRELS}
    first = asyncio.create_task(http.post("/v1/evaluations", json=evaluation(**upload)))
    try:
        await asyncio.wait_for(blocker.entered.wait(), 30)
        r = await http.post("/v1/evaluations", json=evaluation(**upload))
        refused(r, "too many evaluations", "KNOWLEDGE_MAX_CONCURRENT_EVALUATIONS = 1", status=429)
        assert r.headers["retry-after"] == "1" and r.json()["error"]["retry_after_ms"] == 1000
        r = await http.put("/v1/profiles/default", json=gated(passing=True, **upload))
        refused(r, "KNOWLEDGE_MAX_CONCURRENT_EVALUATIONS", status=429)
        assert blocker.calls == 1  # refused before searching anything
    finally:
        blocker.release.set()
        done = await first
    assert done.status_code == 200, done.text
    assert (await http.get("/v1/profiles/default")).json()["version"] == 1
    assert (await http.post("/v1/evaluations", json=evaluation(**upload))).status_code == 200


@pytest.mark.parametrize("settings", [{"max_concurrent_evaluations": 2}], indirect=True)
async def test_max_concurrent_evaluations_sets_how_many_run_at_once(
    http: httpx.AsyncClient, kb: str, core: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = BlockFirstCall(core.searcher._traced)
    monkeypatch.setattr(core.searcher, "_traced", blocker)
    upload = {"queries": QUERIES, "qrels": QRELS}
    first = asyncio.create_task(http.post("/v1/evaluations", json=evaluation(**upload)))
    try:
        await asyncio.wait_for(blocker.entered.wait(), 30)
        assert (await http.post("/v1/evaluations", json=evaluation(**upload))).status_code == 200
    finally:
        blocker.release.set()
        assert (await first).status_code == 200


@pytest.mark.parametrize("settings", [{"max_concurrent_searches": 1, "queue_wait_s": 0.2}], indirect=True)
async def test_an_evaluation_searches_through_the_search_admission_gate(
    http: httpx.AsyncClient, kb: str, core: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    search = {"query": "subject 1"}
    upload = {"queries": QUERIES, "qrels": QRELS}
    # An evaluation holds the only search slot while one of its queries runs: a search waits, then 429.
    blocker = BlockFirstCall(core.searcher._traced)
    monkeypatch.setattr(core.searcher, "_traced", blocker)
    running = asyncio.create_task(http.post("/v1/evaluations", json=evaluation(**upload)))
    try:
        await asyncio.wait_for(blocker.entered.wait(), 30)
        r = await http.post("/v1/namespaces/kb/search", json=search)
        refused(r, "too many concurrent search requests (limit 1)", status=429)
    finally:
        blocker.release.set()
        done = await running
    assert done.status_code == 200, done.text
    assert (await http.post("/v1/namespaces/kb/search", json=search)).status_code == 200

    # A search holding the only slot: the evaluation's first query waits its turn, then 429.
    held = BlockFirstCall(core.searcher._traced)
    monkeypatch.setattr(core.searcher, "_traced", held)
    searching = asyncio.create_task(http.post("/v1/namespaces/kb/search", json=search))
    try:
        await asyncio.wait_for(held.entered.wait(), 30)
        r = await http.post("/v1/evaluations", json=evaluation(**upload))
        refused(r, "stopped after 0 of 3 queries", "KNOWLEDGE_MAX_CONCURRENT_SEARCHES = 1", status=429)
    finally:
        held.release.set()
        assert (await searching).status_code == 200
    assert (await http.post("/v1/evaluations", json=evaluation(**upload))).status_code == 200
