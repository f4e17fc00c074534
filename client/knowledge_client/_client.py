"""The blocking client: :class:`KnowledgeClient`.

Its twin, :class:`~knowledge_client.AsyncKnowledgeClient`, has the same methods: each, in either,
is one line that builds the call (``_requests``) and runs it (``_run``, blocking here, awaited
there), so what a call sends, retries and returns is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar

from . import _requests as rq
from ._grpc import AsyncGrpcTransport, GrpcTransport
from ._http import AsyncHttpTransport, HttpTransport
from ._models import (
    CountResponse,
    DeleteResponse,
    Fusion,
    IngestResponse,
    RetrievalSettings,
    SearchResponse,
    StoredDocument,
)
from ._profile_calls import ProfileCalls
from ._retry import RetryPolicy, call_sync
from ._transports import AsyncTransport, Transport

TransportName = Literal["grpc", "http"]
DEFAULT_TIMEOUT = 10.0
R = TypeVar("R")

# Transport name -> (blocking, asyncio) transport.
TRANSPORTS: dict[str, tuple[Callable[..., Transport], Callable[..., AsyncTransport]]] = {
    "grpc": (GrpcTransport, AsyncGrpcTransport),
    "http": (HttpTransport, AsyncHttpTransport),
}


def _named(transport: str, kind: str) -> tuple[Callable[..., Transport], Callable[..., AsyncTransport]]:
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be 'grpc', 'http' or {kind} (got {transport!r})")
    return TRANSPORTS[transport]


def make_transport(target: str, transport: TransportName | Transport, api_key: str | None) -> Transport:
    if isinstance(transport, str):
        return _named(transport, "a Transport")[0](target, api_key=api_key)
    return transport


def make_async_transport(
    target: str, transport: TransportName | AsyncTransport, api_key: str | None
) -> AsyncTransport:
    if isinstance(transport, str):
        return _named(transport, "an AsyncTransport")[1](target, api_key=api_key)
    return transport


def retry_policy(timeout: float, retries: int, backoff: float, max_backoff: float) -> RetryPolicy:
    """Both clients' constructor check and policy."""
    if timeout <= 0:
        raise ValueError("timeout must be > 0")
    return RetryPolicy(retries=retries, backoff=backoff, max_backoff=max_backoff)


class KnowledgeClient(ProfileCalls):
    """Blocking client for the knowledge side-car; one instance is safe to share across threads.

    Covers every RPC: documents (search, ingest, ingest_stream, delete, get, count) and profiles
    (list_profiles, get_profile, put_profile, profile_versions, rollback_profile,
    get_namespace_settings, set_namespace_settings). Every method raises a
    :class:`~knowledge_client.KnowledgeError` subclass on failure. Calls have a deadline
    (``timeout``, per call, retries included); transient failures (``Unavailable``,
    ``Overloaded``) of idempotent calls are retried with exponential backoff and jitter.

    Args:
        target: ``host:port`` of the gRPC front door (``"127.0.0.1:50051"``), or the HTTP base URL
            or ``host:port`` (``"http://127.0.0.1:8080"``) with ``transport="http"``.
        transport: ``"grpc"`` (default), ``"http"``, or a :class:`~knowledge_client.Transport`.
        api_key: Sent as ``authorization: Bearer <key>`` (ignored when ``transport`` is an object,
            which carries its own).
        timeout: Default deadline of a call in seconds, retries included.
        retries: Attempts after the first for transient failures; 0 disables retrying.
        backoff: First wait between attempts in seconds (doubling, plus up to as much jitter).
        max_backoff: Longest wait between two attempts in seconds.
    """

    def __init__(
        self,
        target: str,
        *,
        transport: TransportName | Transport = "grpc",
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.1,
        max_backoff: float = 2.0,
    ) -> None:
        self.policy = retry_policy(timeout, retries, backoff, max_backoff)
        self.target = target
        self.timeout = timeout
        self.transport = make_transport(target, transport, api_key)

    def _run(self, call: rq.Call[R], timeout: float | None) -> R:
        """Run one call within its deadline (``timeout``, else the client's), retries included."""

        def attempt(left: float) -> dict[str, Any]:
            if call.stream:
                return self.transport.stream(call.method, call.body, timeout=left)
            return self.transport.call(call.method, call.body, timeout=left)

        data = call_sync(
            call.method,
            attempt,
            timeout=timeout or self.timeout,
            policy=self.policy,
            idempotent=call.idempotent,
        )
        return call.result(data)

    def search(
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
            fusion: ``Fusion(method="rrf", k=60, weights=[1, 1])`` or ``Fusion(method="dbsf")``.
            candidates: Depth of each leg and of reranking (must be >= top_k).
            rerank: Force reranking on or off; None lets the service decide.
            explain: Fill each hit's per-leg ranks.
            profile: The retrieval profile; None uses the namespace's default profile.
            overrides: Profile fields changed for this call only, e.g. ``{"rerank_depth": 50}``.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            The ranked chunks, best first, with cache, rerank and timing information.
        """
        return self._run(
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

    def ingest(
        self, namespace: str, documents: Iterable[rq.DocumentLike], *, timeout: float | None = None
    ) -> IngestResponse:
        """Ingest one batch (1-256 documents); a bad document fails alone.

        Args:
            namespace: The knowledge base.
            documents: :class:`~knowledge_client.Document` objects or mappings with the same keys.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            Each document's outcome (created, updated, unchanged, failed) and the index version.
        """
        return self._run(rq.ingest(namespace, documents), timeout)

    def ingest_stream(
        self,
        namespace: str,
        batches: Iterable[Iterable[rq.DocumentLike]],
        *,
        timeout: float | None = None,
    ) -> IngestResponse:
        """Ingest many batches over one call (gRPC ``IngestStream``; over HTTP, one request each).

        Batches are read lazily, so a generator can feed a large corpus. Never retried.

        Args:
            namespace: The knowledge base.
            batches: Batches of documents (each 1-256).
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            Every document's outcome, in order, and the final index version.
        """
        return self._run(rq.ingest_stream(namespace, batches), timeout)

    def delete(
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
        return self._run(rq.delete(namespace, ids, filter), timeout)

    def get(self, namespace: str, doc_id: str, *, timeout: float | None = None) -> StoredDocument:
        """Fetch one stored document.

        Args:
            namespace: The knowledge base.
            doc_id: The document's id.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            The document; raises :class:`~knowledge_client.NotFound` if there is none.
        """
        return self._run(rq.get(namespace, doc_id), timeout)

    def count(
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
        return self._run(rq.count(namespace, filter), timeout)

    def close(self) -> None:
        """Close the channel or connection pool."""
        self.transport.close()

    def __enter__(self) -> KnowledgeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
