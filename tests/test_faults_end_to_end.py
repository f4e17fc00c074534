"""Faults end to end, against a real `knowledge serve` child over HTTP: the cache's Redis stopped
under load and brought back, `kill -9` of the service during a stream of ingests and
replacements, and the store's disk filling up."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import RedisServer, ServedProcess, eventually, serve_env


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_redis_stopped_under_load_degrades_to_uncached_and_recovers(
    tmp_path: Path, redis: RedisServer
) -> None:
    # the decoded copies kept in process would answer repeats without Redis: off, so hits are Redis's
    env = serve_env(tmp_path / "data", KNOWLEDGE_REDIS_URL=redis.url, KNOWLEDGE_CACHE_DECODED_ENTRIES="0")
    proc = ServedProcess(env)
    try:
        await proc.ready()
        async with httpx.AsyncClient(base_url=proc.url, timeout=30) as http:
            doc = {"id": "a", "text": "Searches go on uncached while the cache is down."}
            (await http.post("/v1/namespaces/kb/documents", json={"documents": [doc]})).raise_for_status()
            answers: list[dict[str, Any]] = []
            failures: list[int] = []
            stop = asyncio.Event()

            async def load() -> None:  # two searches a tick: a new text, then the same again
                for i in range(10_000):
                    if stop.is_set():
                        return
                    for _ in range(2):
                        resp = await http.post("/v1/namespaces/kb/search", json={"query": f"cache down {i}"})
                        if resp.status_code != 200:
                            failures.append(resp.status_code)
                        else:
                            answers.append(resp.json())
                    await asyncio.sleep(0.02)

            loader = asyncio.create_task(load())
            await eventually(lambda: any(a["cache_hit"] for a in answers), what="a cache hit from Redis")
            redis.stop()
            stopped_at = len(answers)
            await eventually(lambda: any(a["degraded"] == ["cache"] for a in answers[stopped_at:]))
            down = len(answers)
            await eventually(lambda: len(answers) >= down + 10, what="ten searches with Redis down")
            during = answers[down : down + 10]
            assert all(a["degraded"] == ["cache"] and not a["cache_hit"] for a in during)
            assert all(a["results"][0]["doc_id"] == "a" for a in during)
            assert (await http.get("/readyz")).json()["cache"].startswith("down")

            redis.start()
            back = len(answers)
            await eventually(
                lambda: any(a["cache_hit"] and not a["degraded"] for a in answers[back:]),
                timeout=30,
                what="cache hits again once Redis is back",
            )
            assert (await http.get("/readyz")).json()["cache"] == "ok"
            stop.set()
            await loader
            assert failures == []  # not one search failed, before, during or after
    finally:
        proc.stop()


def _replacement(doc_id: str, version: int) -> dict[str, str]:
    sentences = " ".join(f"Sentence {k} of version {version} of {doc_id}." for k in range(1 + version % 7))
    return {"id": doc_id, "text": sentences * (1 + version % 3)}


async def test_kill_9_during_ingests_and_replacements_keeps_every_acknowledged_document_whole(
    tmp_path: Path,
) -> None:
    """Writers ingest new documents and replace existing ones (their chunk counts change); the
    service is killed with SIGKILL mid-stream. After a restart every acknowledged document is
    there with the text of its last acknowledged version or of a version sent after it (one in
    flight may have landed unacknowledged), never a mix, and the chunk count is the sum of what
    the documents' own ingests reported."""
    data = tmp_path / "data"
    env = serve_env(data)
    proc = ServedProcess(env)
    acked: dict[str, int] = {}  # doc id -> last acknowledged version
    sent: dict[str, set[int]] = {}  # doc id -> every version sent
    chunks: dict[tuple[str, int], int] = {}  # (doc id, version) -> chunks its ingest reported
    stop = threading.Event()

    def writer(w: int) -> None:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            version = 0
            while not stop.is_set():
                version += 1
                doc_id = f"w{w}-{version % 5}"  # five documents per writer, replaced in turn
                doc = _replacement(doc_id, version)
                sent.setdefault(doc_id, set()).add(version)
                try:
                    resp = http.post("/v1/namespaces/kb/documents", json={"documents": [doc]})
                except httpx.HTTPError:
                    return  # the service is gone
                if resp.status_code == 200:
                    acked[doc_id] = version
                    chunks[(doc_id, version)] = resp.json()["results"][0]["chunks"]

    try:
        await proc.ready()
        writers = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for t in writers:
            t.start()
        await eventually(lambda: len(acked) >= 12, timeout=120, what="a dozen acknowledged documents")
        await asyncio.sleep(1.0)  # mid-stream
        proc.kill()
        stop.set()
        for t in writers:
            t.join(timeout=60)
    finally:
        proc.kill()

    restarted = ServedProcess(serve_env(data))
    try:
        await restarted.ready()
        async with httpx.AsyncClient(base_url=restarted.url, timeout=30) as http:
            total = 0
            for doc_id, version in acked.items():
                resp = await http.get(f"/v1/namespaces/kb/documents/{doc_id}")
                assert resp.status_code == 200, (doc_id, resp.text)
                doc = resp.json()
                landed = [
                    v for v in sent[doc_id] if v >= version and _replacement(doc_id, v)["text"] == doc["text"]
                ]
                assert landed, f"{doc_id}: neither its acknowledged version {version} nor a later one"
                if (doc_id, landed[0]) in chunks:  # acknowledged: the count its ingest reported
                    assert doc["chunks"] == chunks[(doc_id, landed[0])]
                total += doc["chunks"]
            count = (await http.get("/v1/namespaces/kb/count")).json()
            assert count["documents"] == len(acked)
            assert count["chunks"] == total  # no chunk of a half-written or replaced version is live
    finally:
        restarted.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 MB disk of its own (tmpfs), so that filling it fills nothing else."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small disk (tmpfs) needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _free_mb(path: Path) -> float:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize / 2**20


async def test_a_full_disk_refuses_new_documents_clearly_and_loses_nothing(
    tmp_path: Path, small_disk: Path
) -> None:
    """Another process fills the store's disk: the service refuses new documents with a message
    saying what to do (it neither crashes, which a write into a mapped page with no disk behind it
    would do, nor half-writes), searches go on, and once the space is back the refused batch goes
    in on retry and a restart finds every acknowledged document."""
    reserve = 32
    env = serve_env(
        small_disk / "data",
        KNOWLEDGE_MODELS_DIR=str(tmp_path / "models"),
        KNOWLEDGE_MIN_FREE_DISK_MB=str(reserve),
    )
    proc = ServedProcess(env)
    acked: list[str] = []
    try:
        await proc.ready()
        filler = small_disk / "filler"
        subprocess.run(
            ["fallocate", "-l", f"{int(_free_mb(small_disk) - reserve - 2)}M", str(filler)], check=True
        )
        async with httpx.AsyncClient(base_url=proc.url, timeout=60) as http:
            refused = None
            for batch in range(200):
                docs = [
                    {"id": f"b{batch}-{i}", "text": f"Batch {batch} document {i}. " * 60} for i in range(16)
                ]
                resp = await http.post("/v1/namespaces/kb/documents", json={"documents": docs})
                if resp.status_code != 200:
                    refused = (docs, resp)
                    break
                acked.extend(d["id"] for d in docs)
            assert refused is not None, "the disk never filled"
            docs, resp = refused
            assert resp.status_code == 503, resp.text
            message = resp.json()["error"]["message"]
            assert "disk" in message and "KNOWLEDGE_MIN_FREE_DISK_MB" in message, message
            assert proc.proc.poll() is None  # alive
            search = await http.post("/v1/namespaces/kb/search", json={"query": "batch 0 document 3"})
            assert search.status_code == 200 and search.json()["results"]
            assert (await http.get("/healthz")).status_code == 200
            count = (await http.get("/v1/namespaces/kb/count")).json()
            assert count["documents"] == len(acked)  # nothing of the refused batch is visible

            filler.unlink()  # the space comes back
            retried = await http.post("/v1/namespaces/kb/documents", json={"documents": docs})
            assert retried.status_code == 200, retried.text
            acked.extend(d["id"] for d in docs)
    finally:
        proc.stop()

    restarted = ServedProcess(env)
    try:
        await restarted.ready()
        async with httpx.AsyncClient(base_url=restarted.url, timeout=60) as http:
            count = (await http.get("/v1/namespaces/kb/count")).json()
            assert count["documents"] == len(acked)
            for doc_id in acked[:: max(1, len(acked) // 20)] + [acked[-1]]:
                assert (await http.get(f"/v1/namespaces/kb/documents/{doc_id}")).status_code == 200
            search = await http.post("/v1/namespaces/kb/search", json={"query": "batch 0 document 3"})
            assert search.status_code == 200 and search.json()["results"]
    finally:
        restarted.stop()
