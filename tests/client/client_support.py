"""Shared constants and helpers of the client tests (imported by conftest and the test modules)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from harness import free_port, serve_grpc, serve_http
from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings

__all__ = ["DOCS", "NS", "Service", "blocking", "free_port", "serve"]

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


@asynccontextmanager
async def serve(transport: str, core: Any, settings: Settings, port: int) -> AsyncIterator[str]:
    """Either front door over ``core`` on a given port (tests/harness.py); yields its target."""
    if transport == "grpc":
        async with serve_grpc(core, settings, port=port) as serving:
            yield serving.target
    else:
        async with serve_http(core, settings, port=port) as url:
            yield url
