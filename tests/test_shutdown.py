"""Graceful shutdown of a real `knowledge serve` process: SIGTERM with a request in flight."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from conftest import free_port
from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.models.dense import DenseEncoder
from knowledge_service.schemas.documents import CountRequest

SERVE = "import sys; from knowledge_service.cli.main import app; sys.argv = ['knowledge', 'serve']; app()"


async def test_sigterm_finishes_in_flight_requests_then_flushes(tmp_path: Path, dense_encoder: DenseEncoder):
    data, port = tmp_path / "data", free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "KNOWLEDGE_DATA_DIR": str(data),
        "KNOWLEDGE_HTTP_PORT": str(port),
        "KNOWLEDGE_GRPC_PORT": str(free_port()),
        "KNOWLEDGE_GRPC_GRACE_S": "30",
        "KNOWLEDGE_LOG_FORMAT": "text",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "service did not become ready"
            await asyncio.sleep(0.2)

        # A batch that takes seconds to chunk and embed, in flight when SIGTERM arrives.
        words = " ".join(f"word{i % 97} sentence{i % 13}." for i in range(500))
        docs = [{"id": f"d{i}", "text": f"Document {i}. {words}"} for i in range(24)]
        result: dict[str, httpx.Response] = {}
        finished: list[float] = []

        def send() -> None:
            result["r"] = httpx.post(
                f"{url}/v1/namespaces/kb/documents", json={"documents": docs}, timeout=120
            )
            finished.append(time.monotonic())

        sender = threading.Thread(target=send)
        sender.start()
        await asyncio.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        await asyncio.sleep(0.5)
        try:  # no new work is accepted once shutdown began
            late = httpx.post(f"{url}/v1/namespaces/kb/search", json={"query": "late"}, timeout=5).status_code
        except httpx.TransportError:
            late = "refused"
        sender.join(timeout=120)
        assert finished[0] > signalled  # it really was in flight
        assert result["r"].status_code == 200, result["r"].text
        assert [r["status"] for r in result["r"].json()["results"]] == ["created"] * 24
        assert late in ("refused", 503)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    core = await Knowledge.open(Settings(data_dir=data, optimize_idle_s=0), dense=dense_encoder)
    try:
        assert (await core.documents.count(CountRequest(namespace="kb"))).documents == 24
    finally:
        await core.close()
