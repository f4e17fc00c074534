"""Graceful shutdown of a real `knowledge serve` process: SIGTERM with a request in flight."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import httpx

from harness import ServedProcess, eventually, serve_env
from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.models.base import DenseModel
from knowledge_service.schemas.documents import CountRequest

DOCS = 12
IN_FLIGHT_INGESTS = 'knowledge_in_flight{kind="ingest"} 1.0'


async def test_sigterm_finishes_in_flight_requests_then_flushes(tmp_path: Path, dense_encoder: DenseModel):
    data = tmp_path / "data"
    # The grace period only bounds the wait: generous, so that a loaded machine still finishes.
    served = ServedProcess(serve_env(data, KNOWLEDGE_GRPC_GRACE_S="120", KNOWLEDGE_LOG_FORMAT="text"))
    url = served.url
    try:
        await served.ready()

        # A batch that takes seconds to chunk and embed, in flight when SIGTERM arrives.
        words = " ".join(f"word{i % 97} sentence{i % 13}." for i in range(500))
        docs = [{"id": f"d{i}", "text": f"Document {i}. {words}"} for i in range(DOCS)]
        result: dict[str, httpx.Response] = {}
        finished: list[float] = []

        def send() -> None:
            result["r"] = httpx.post(
                f"{url}/v1/namespaces/kb/documents", json={"documents": docs}, timeout=300
            )
            finished.append(time.monotonic())

        sender = threading.Thread(target=send)
        sender.start()
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:

            async def ingest_in_flight() -> bool:
                return IN_FLIGHT_INGESTS in (await http.get("/metrics")).text

            await eventually(ingest_in_flight, timeout=60, what="the batch holds an ingest slot")
        served.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        await served.logged("shutting down")
        await eventually(lambda: not served.accepting(), timeout=30, what="the HTTP listener closed")
        closed_while_working = not finished
        try:  # no new work is accepted once shutdown began
            late = httpx.post(f"{url}/v1/namespaces/kb/search", json={"query": "late"}, timeout=5).status_code
        except httpx.TransportError:
            late = "refused"
        await asyncio.to_thread(sender.join, 300)
        assert finished[0] > signalled  # it really was in flight
        assert closed_while_working  # new connections were refused while the batch still ran
        assert result["r"].status_code == 200, (result["r"].text, served.output)
        assert [r["status"] for r in result["r"].json()["results"]] == ["created"] * DOCS
        assert late in ("refused", 503)
        assert served.proc.wait(timeout=60) == 0, served.output
    finally:
        served.kill()

    core = await Knowledge.open(Settings(data_dir=data, optimize_idle_s=0), dense=dense_encoder)
    try:
        assert (await core.documents.count(CountRequest(namespace="kb"))).documents == DOCS
    finally:
        await core.close()
