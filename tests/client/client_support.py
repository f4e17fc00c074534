"""Shared constants and helpers of the client tests (imported by conftest and the test modules)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn

from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.doors.grpc.server import create_server, start_server, stop_server
from knowledge_service.doors.http.app import create_app

T = TypeVar("T")

NS = "client-test"
DOCS = [
    {
        "id": "oncall",
        "title": "On-call",
        "metadata": {"team": "search", "year": 2026},
        "text": "Page the search team when p99 latency is over 200 ms. The pager rotates weekly. "
        "Escalate to the platform team after thirty minutes.",
    },
    {
        "id": "qdrant",
        "title": "Qdrant",
        "metadata": {"team": "storage", "year": 2020},
        "text": "Qdrant is a vector database written in Rust for similarity search.",
    },
    {
        "id": "bread",
        "title": "Sourdough",
        "metadata": {"team": "kitchen", "year": 2021},
        "text": "Sourdough bread needs flour, water, salt and a lively starter.",
    },
]


@dataclass(frozen=True)
class Service:
    """The running service: its core and both front doors."""

    core: Knowledge
    grpc: str  # host:port
    http: str  # base URL

    def target(self, transport: str) -> str:
        return self.grpc if transport == "grpc" else self.http


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking client call off the event loop that serves the service."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def serve_grpc(core: Any, settings: Settings, port: int = 0) -> AsyncIterator[str]:
    """The real gRPC front door over ``core`` on ``port`` (0: a free one); yields host:port."""
    server, bound = create_server(core, settings, port=port)
    await start_server(server)
    try:
        yield f"127.0.0.1:{bound}"
    finally:
        await stop_server(server, 0)


@asynccontextmanager
async def serve_http(core: Any, settings: Settings, port: int) -> AsyncIterator[str]:
    """The real HTTP front door over ``core`` on ``port`` (uvicorn, as the root ``http_url``)."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, core),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10  # uvicorn has no started event: poll its flag, within a bound
    while not server.started:
        if task.done():
            task.result()
        assert time.monotonic() < deadline, f"uvicorn did not start on port {port} within 10 s"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def serve(transport: str, core: Any, settings: Settings, port: int) -> AsyncIterator[str]:
    """Either front door on a given port."""
    cm = serve_grpc(core, settings, port) if transport == "grpc" else serve_http(core, settings, port)
    async with cm as target:
        yield target
