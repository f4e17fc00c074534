"""The asyncio client: :class:`AsyncKnowledgeClient` (same calls as the blocking one, awaited)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any, Literal

from . import _requests as rq
from ._client import DEFAULT_TIMEOUT, TransportName
from ._grpc import AsyncGrpcTransport
from ._http import AsyncHttpTransport
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
from ._retry import RetryPolicy, call_async
from ._transports import AsyncTransport


def make_async_transport(
    target: str, transport: TransportName | AsyncTransport, api_key: str | None
) -> AsyncTransport:
    if transport == "grpc":
        return AsyncGrpcTransport(target, api_key=api_key)
    if transport == "http":
        return AsyncHttpTransport(target, api_key=api_key)
    if isinstance(transport, str):
        raise ValueError(f"transport must be 'grpc', 'http' or an AsyncTransport (got {transport!r})")
    return transport


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
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.target = target
        self.timeout = timeout
        self.policy = RetryPolicy(retries=retries, backoff=backoff, max_backoff=max_backoff)
        self.transport = make_async_transport(target, transport, api_key)

    async def _call(self, method: str, body: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        return await call_async(
            method,
            lambda left: self.transport.call(method, body, timeout=left),
            timeout=timeout or self.timeout,
            policy=self.policy,
            idempotent=rq.IDEMPOTENT[method],
        )

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
        body = rq.search_body(
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
        )
        return SearchResponse.model_validate(await self._call("Search", body, timeout))

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
        body = rq.ingest_body(namespace, documents)
        return IngestResponse.model_validate(await self._call("Ingest", body, timeout))

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
        if isinstance(batches, AsyncIterable):
            async_batches = batches

            async def bodies_async() -> Any:
                async for batch in async_batches:
                    yield rq.ingest_body(namespace, batch)

            bodies: Any = bodies_async()
        else:
            bodies = (rq.ingest_body(namespace, batch) for batch in batches)
        data = await call_async(
            "IngestStream",
            lambda left: self.transport.stream("IngestStream", bodies, timeout=left),
            timeout=timeout or self.timeout,
            policy=self.policy,
            idempotent=False,
        )
        return IngestResponse.model_validate(data)

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
        body = rq.delete_body(namespace, ids, filter)
        return DeleteResponse.model_validate(await self._call("DeleteDocuments", body, timeout))

    async def get(self, namespace: str, doc_id: str, *, timeout: float | None = None) -> StoredDocument:
        """Fetch one stored document.

        Args:
            namespace: The knowledge base.
            doc_id: The document's id.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            The document; raises :class:`~knowledge_client.NotFound` if there is none.
        """
        body = {"namespace": namespace, "doc_id": doc_id}
        return StoredDocument.model_validate(await self._call("GetDocument", body, timeout))

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
        body = rq.count_body(namespace, filter)
        return CountResponse.model_validate(await self._call("CountDocuments", body, timeout))

    async def close(self) -> None:
        """Close the channel or connection pool."""
        await self.transport.close()

    async def __aenter__(self) -> AsyncKnowledgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
