"""The asyncio client: :class:`AsyncKnowledgeClient` (same calls as the blocking one, awaited).

Each method is one line, as in :class:`~knowledge_client.KnowledgeClient`: the call is built by
``_requests`` and awaited by ``_run``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any, Literal, TypeVar

from . import _requests as rq
from ._client import DEFAULT_TIMEOUT, TransportName, make_async_transport, retry_policy
from ._models import (
    CountResponse,
    DeleteResponse,
    Fusion,
    IngestResponse,
    RetrievalSettings,
    SearchResponse,
    StoredDocument,
)
from ._profile_calls import AsyncProfileCalls
from ._retry import call_async
from ._transports import AsyncTransport

R = TypeVar("R")


class AsyncKnowledgeClient(AsyncProfileCalls):
    """asyncio client for the knowledge side-car; use one instance from one event loop.

    Same arguments, calls, deadlines, retries and errors as
    :class:`~knowledge_client.KnowledgeClient`; every call is a coroutine.

    Args:
        target: ``host:port`` of the gRPC front door, or the HTTP base URL with ``transport="http"``.
        transport: ``"grpc"`` (default), ``"http"``, or an :class:`~knowledge_client.AsyncTransport`.
        api_key: Sent as ``authorization: Bearer <key>``.
        timeout: Default deadline of a call in seconds, retries included.
        retries: Attempts after the first for transient failures; 0 disables retrying.
        backoff: First wait between attempts in seconds (doubling, plus up to as much jitter).
        max_backoff: Longest wait between two attempts in seconds.
    """

    def __init__(
        self,
        target: str,
        *,
        transport: TransportName | AsyncTransport = "grpc",
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.1,
        max_backoff: float = 2.0,
    ) -> None:
        self.policy = retry_policy(timeout, retries, backoff, max_backoff)
        self.target = target
        self.timeout = timeout
        self.transport = make_async_transport(target, transport, api_key)

    async def _run(self, call: rq.Call[R], timeout: float | None) -> R:
        """Await one call within its deadline (``timeout``, else the client's), retries included."""

        async def attempt(left: float) -> dict[str, Any]:
            if call.stream:
                return await self.transport.stream(call.method, call.body, timeout=left)
            return await self.transport.call(call.method, call.body, timeout=left)

        data = await call_async(
            call.method,
            attempt,
            timeout=timeout or self.timeout,
            policy=self.policy,
            idempotent=call.idempotent,
        )
        return call.result(data)

    async def search(
        self,
        namespace: str,
        query: str,
        *,
        top_k: int | None = None,
        filter: Mapping[str, Any] | None = None,
        mode: Literal["hybrid", "dense", "sparse"] | None = None,
        fusion: Fusion | Mapping[str, Any] | None = None,
        candidates: int | None = None,
        rerank: bool | None = None,
        explain: bool = False,
        profile: str | None = None,
        overrides: RetrievalSettings | Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> SearchResponse:
        """Hybrid (dense + BM25) search over one namespace.

        Args:
            namespace: The knowledge base.
            query: 1-2,000 characters.
            top_k: Chunks to return (service default 10, at most 100).
            filter: Metadata filter, e.g. ``{"field": "lang", "eq": "en"}``.
            mode: ``"hybrid"`` (default), ``"dense"`` or ``"sparse"``.
            fusion: Fusion method and parameters.
            candidates: Depth of each leg and of reranking (must be >= top_k).
            rerank: Force reranking on or off; None lets the service decide.
            explain: Fill each hit's per-leg ranks.
            profile: The retrieval profile; None uses the namespace's default profile.
            overrides: Profile fields changed for this call only.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            The ranked chunks, best first.
        """
        return await self._run(
            rq.search(
                namespace,
                query,
                top_k=top_k,
                filter=filter,
                mode=mode,
                fusion=fusion,
                candidates=candidates,
                rerank=rerank,
                explain=explain,
                profile=profile,
                overrides=overrides,
            ),
            timeout,
        )

    async def ingest(
        self, namespace: str, documents: Iterable[rq.DocumentLike], *, timeout: float | None = None
    ) -> IngestResponse:
        """Ingest one batch (1-256 documents); a bad document fails alone.

        Args:
            namespace: The knowledge base.
            documents: :class:`~knowledge_client.Document` objects or mappings.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            Each document's outcome and the index version.
        """
        return await self._run(rq.ingest(namespace, documents), timeout)

    async def ingest_stream(
        self,
        namespace: str,
        batches: AsyncIterable[Iterable[rq.DocumentLike]] | Iterable[Iterable[rq.DocumentLike]],
        *,
        timeout: float | None = None,
    ) -> IngestResponse:
        """Ingest many batches over one call; batches may come from an async generator.

        Args:
            namespace: The knowledge base.
            batches: Batches of documents (each 1-256).
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            Every document's outcome, in order, and the final index version.
        """
        return await self._run(rq.ingest_stream(namespace, batches), timeout)

    async def delete(
        self,
        namespace: str,
        ids: Iterable[str] = (),
        *,
        filter: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> DeleteResponse:
        """Delete documents by id and/or metadata filter (give at least one).

        Args:
            namespace: The knowledge base.
            ids: Document ids.
            filter: Also delete every document whose metadata matches.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            How many documents were deleted, and the index version.
        """
        return await self._run(rq.delete(namespace, ids, filter), timeout)

    async def get(self, namespace: str, doc_id: str, *, timeout: float | None = None) -> StoredDocument:
        """Fetch one stored document.

        Args:
            namespace: The knowledge base.
            doc_id: The document's id.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            The document; raises :class:`~knowledge_client.NotFound` if there is none.
        """
        return await self._run(rq.get(namespace, doc_id), timeout)

    async def count(
        self, namespace: str, *, filter: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> CountResponse:
        """Count documents and chunks, optionally under a metadata filter.

        Args:
            namespace: The knowledge base.
            filter: Count only documents whose metadata matches.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            Documents, chunks and the index version.
        """
        return await self._run(rq.count(namespace, filter), timeout)

    async def close(self) -> None:
        """Close the channel or connection pool."""
        await self.transport.close()

    async def __aenter__(self) -> AsyncKnowledgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
