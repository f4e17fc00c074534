"""What a transport is: the seam where tests (or another network stack) plug in.

A transport carries one RPC of ``knowledge.v1.KnowledgeService`` by name (``"Search"``,
``"GetProfile"``, any of them; ``"IngestStream"`` through :meth:`stream`) with a JSON-shaped body
(the HTTP API's, ``namespace`` included) and returns the JSON-shaped response, the same dict over
either transport. It raises only :class:`~knowledge_client.KnowledgeError` subclasses, and makes
exactly one attempt within the ``timeout`` it is given (the time left of the call's deadline):
deadlines across retries, backoff and typed results are the client's job.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any, Protocol, runtime_checkable

Body = dict[str, Any]


@runtime_checkable
class Transport(Protocol):
    """A blocking transport, safe to call from many threads at once."""

    def call(self, method: str, body: Body, *, timeout: float | None) -> Body:
        """Run one unary RPC."""
        ...

    def stream(self, method: str, bodies: Iterable[Body], *, timeout: float | None) -> Body:
        """Run one client-streaming RPC (``IngestStream``)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class AsyncTransport(Protocol):
    """An asyncio transport, used from one event loop."""

    async def call(self, method: str, body: Body, *, timeout: float | None) -> Body:
        """Run one unary RPC."""
        ...

    async def stream(
        self, method: str, bodies: AsyncIterable[Body] | Iterable[Body], *, timeout: float | None
    ) -> Body:
        """Run one client-streaming RPC (``IngestStream``)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
