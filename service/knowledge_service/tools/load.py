"""Concurrent load for the bench: one caller per transport, N workers over it, latencies and errors.

The callers speak the public contract only: gRPC through the generated stubs (``grpc.aio``, one
channel shared by every worker: HTTP/2 multiplexes the calls), HTTP through one ``httpx``
client with a connection per worker, and in process straight to the core. The service may not
import the client library itself (its private modules are off limits to it, see pyproject's
import contracts), and these thin callers add less of their own time than it would anyway: no
retries, no model conversion.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import httpx

from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc
from knowledge_service.app import Knowledge
from knowledge_service.core.errors import KnowledgeError
from knowledge_service.core.limits import MAX_REQUEST_BYTES
from knowledge_service.schemas.common import normalise_query
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.search import Mode, SearchRequest
from knowledge_service.tools.paths import median_p99

CALL_TIMEOUT_S = 120.0
_MODES = {"hybrid": pb.SEARCH_MODE_HYBRID, "dense": pb.SEARCH_MODE_DENSE, "sparse": pb.SEARCH_MODE_SPARSE}


@dataclass(frozen=True)
class Searched:
    cache_hit: bool
    doc_ids: list[str]


class Caller(Protocol):
    """One transport to the service. Errors are raised; ``error_kind`` names them for the tally."""

    async def search(self, namespace: str, query: str, mode: Mode) -> Searched: ...

    async def ingest(self, namespace: str, docs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        """(status, chunks) of each document, in order."""
        ...

    async def aclose(self) -> None: ...


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"grpc:{exc.code().name}"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"http:{exc.response.status_code}"
    if isinstance(exc, KnowledgeError):
        return f"core:{type(exc).__name__}"
    return type(exc).__name__


class GrpcCaller:
    def __init__(self, target: str) -> None:
        options = [
            ("grpc.max_send_message_length", MAX_REQUEST_BYTES),
            ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
        ]
        self._channel = grpc.aio.insecure_channel(target, options=options)
        self._stub = pb_grpc.KnowledgeServiceStub(self._channel)

    async def _search(self, namespace: str, query: str, mode: Mode) -> pb.SearchResponse:
        req = pb.SearchRequest(namespace=namespace, query=query, mode=_MODES[mode])
        return await self._stub.Search(req, timeout=CALL_TIMEOUT_S)

    async def search(self, namespace: str, query: str, mode: Mode) -> Searched:
        resp = await self._search(namespace, query, mode)
        return Searched(resp.cache_hit, [h.doc_id for h in resp.results])

    async def answer(self, namespace: str, query: str, mode: Mode) -> bytes:
        """The served answer to ``query`` as it came on the wire (for the echo floor, echo.py)."""
        return bytes((await self._search(namespace, query, mode)).SerializeToString())

    async def ingest(self, namespace: str, docs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        documents = [
            pb.Document(id=d["id"], text=d["text"], **({"title": d["title"]} if d.get("title") else {}))
            for d in docs
        ]
        resp = await self._stub.Ingest(
            pb.IngestRequest(namespace=namespace, documents=documents), timeout=CALL_TIMEOUT_S
        )
        name = pb.IngestStatus.Name
        return [(name(r.status).removeprefix("INGEST_STATUS_").lower(), r.chunks) for r in resp.results]

    async def aclose(self) -> None:
        await self._channel.close()


class HttpCaller:
    def __init__(self, url: str, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._http = httpx.AsyncClient(base_url=url, limits=limits, timeout=CALL_TIMEOUT_S)

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        resp = await self._http.post(path, json=body)
        resp.raise_for_status()
        return resp.json()

    async def search(self, namespace: str, query: str, mode: Mode) -> Searched:
        out = await self._post(f"/v1/namespaces/{namespace}/search", {"query": query, "mode": mode})
        return Searched(bool(out["cache_hit"]), [h["doc_id"] for h in out["results"]])

    async def ingest(self, namespace: str, docs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        out = await self._post(f"/v1/namespaces/{namespace}/documents", {"documents": docs})
        return [(r["status"], int(r.get("chunks", 0))) for r in out["results"]]

    async def aclose(self) -> None:
        await self._http.aclose()


class InProcessCaller:
    def __init__(self, core: Knowledge) -> None:
        self._core = core

    async def search(self, namespace: str, query: str, mode: Mode) -> Searched:
        resp = await self._core.searcher.search(SearchRequest(namespace=namespace, query=query, mode=mode))
        return Searched(resp.cache_hit, [r.doc_id for r in resp.results])

    async def ingest(self, namespace: str, docs: list[dict[str, Any]]) -> list[tuple[str, int]]:
        resp = await self._core.documents.ingest(IngestRequest(namespace=namespace, documents=docs))
        return [(r.status, r.chunks) for r in resp.results]

    async def aclose(self) -> None:
        return None


class QueryTexts:
    """Query texts never sent before: the distinct queries given, then each again with a numbered
    suffix (" (1)", " (2)"...), as many rounds as it takes."""

    def __init__(self, queries: list[str]) -> None:
        self._base = list(dict.fromkeys(q for q in map(normalise_query, queries) if q))
        if not self._base:
            raise ValueError("no query texts")
        self._next = 0

    def take(self, n: int) -> list[str]:
        out = []
        for i in range(self._next, self._next + n):
            rounds, j = divmod(i, len(self._base))
            out.append(self._base[j] if rounds == 0 else f"{self._base[j]} ({rounds})")
        self._next += n
        return out


@dataclass
class Phase:
    """What N workers saw sending ``texts`` as fast as each answer came back."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    cache_hits: int = 0
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        done = sorted(self.latencies_ms)
        out: dict[str, Any] = {"requests": len(done) + sum(self.errors.values()), "completed": len(done)}
        if done:
            out.update(median_p99(done))
        out["per_s"] = round(len(done) / self.wall_s, 1) if self.wall_s else 0.0
        out["wall_s"] = round(self.wall_s, 3)
        out["errors"] = sum(self.errors.values())
        if self.errors:
            out["error_kinds"] = dict(self.errors)
        out["cache_hits"] = self.cache_hits
        return out


async def drive(caller: Caller, namespace: str, mode: Mode, texts: list[str], concurrency: int) -> Phase:
    """``concurrency`` workers (closed loop: each sends its next query when its answer comes) take
    the texts in order until none is left; throughput is completed requests over the wall time."""
    phase = Phase()
    pending = iter(texts)  # one event loop: workers share the iterator without a lock

    async def worker() -> None:
        for text in pending:
            started = time.perf_counter()
            try:
                searched = await caller.search(namespace, text, mode)
            except Exception as exc:  # counted, and the load goes on
                phase.errors[error_kind(exc)] += 1
                continue
            phase.latencies_ms.append((time.perf_counter() - started) * 1000)
            phase.cache_hits += searched.cache_hit

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    phase.wall_s = time.perf_counter() - started
    return phase
