"""The blocking client: :class:`KnowledgeClient`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from . import _requests as rq
from ._grpc import GrpcTransport
from ._http import HttpTransport
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
from ._transports import Transport

TransportName = Literal["grpc", "http"]
DEFAULT_TIMEOUT = 10.0


def make_transport(target: str, transport: TransportName | Transport, api_key: str | None) -> Transport:
    if transport == "grpc":
        return GrpcTransport(target, api_key=api_key)
    if transport == "http":
        return HttpTransport(target, api_key=api_key)
    if isinstance(transport, str):
        raise ValueError(f"transport must be 'grpc', 'http' or a Transport (got {transport!r})")
    return transport


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
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.target = target
        self.timeout = timeout
        self.policy = RetryPolicy(retries=retries, backoff=backoff, max_backoff=max_backoff)
        self.transport = make_transport(target, transport, api_key)

    def _call(self, method: str, body: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        return call_sync(
            method,
            lambda left: self.transport.call(method, body, timeout=left),
            timeout=timeout or self.timeout,
            policy=self.policy,
            idempotent=rq.IDEMPOTENT[method],
        )

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
        return SearchResponse.model_validate(self._call("Search", body, timeout))

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
        return IngestResponse.model_validate(
            self._call("Ingest", rq.ingest_body(namespace, documents), timeout)
        )

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
        bodies = (rq.ingest_body(namespace, batch) for batch in batches)
        data = call_sync(
            "IngestStream",
            lambda left: self.transport.stream("IngestStream", bodies, timeout=left),
            timeout=timeout or self.timeout,
            policy=self.policy,
            idempotent=False,
        )
        return IngestResponse.model_validate(data)

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
        return DeleteResponse.model_validate(
            self._call("DeleteDocuments", rq.delete_body(namespace, ids, filter), timeout)
        )

    def get(self, namespace: str, doc_id: str, *, timeout: float | None = None) -> StoredDocument:
        """Fetch one stored document.

        Args:
            namespace: The knowledge base.
            doc_id: The document's id.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            The document; raises :class:`~knowledge_client.NotFound` if there is none.
        """
        body = {"namespace": namespace, "doc_id": doc_id}
        return StoredDocument.model_validate(self._call("GetDocument", body, timeout))

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
        body = rq.count_body(namespace, filter)
        return CountResponse.model_validate(self._call("CountDocuments", body, timeout))

    def close(self) -> None:
        """Close the channel or connection pool."""
        self.transport.close()

    def __enter__(self) -> KnowledgeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
