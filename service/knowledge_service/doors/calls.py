"""One record per call, the same on every front door: the access log line and the request metrics.

A door opens a :class:`Call` when a request arrives and finishes it when the answer leaves; its
handlers note what they learn on the way (the profile that served a search, the query). Both
doors name a call by its operation (the RPC name, which is also the HTTP route's name) and its
outcome by the error table's code (``OK``, ``INVALID_ARGUMENT``…); HTTP adds its status number.
"""

from __future__ import annotations

import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field

from knowledge_service.ops.logs import log_request
from knowledge_service.ops.metrics import Metrics

# Probes and scrapes are counted but not logged: they would drown the log.
UNLOGGED = frozenset({"Health", "Metrics"})


@dataclass
class Call:
    transport: str
    operation: str
    request_id: str
    namespace: str | None = None
    profile: str | None = None
    query: str | None = None
    started: float = field(default_factory=time.perf_counter)


def request_id(given: str | None) -> str:
    """The caller's ``x-request-id``, or a new one."""
    return given or uuid.uuid4().hex


_current: ContextVar[Call | None] = ContextVar("knowledge_call", default=None)


def begin(call: Call) -> Call:
    """Make ``call`` the one that handlers in this context note things on."""
    _current.set(call)
    return call


def note(*, namespace: str | None = None, profile: str | None = None, query: str | None = None) -> None:
    """Record what a handler learnt about the current call (no-op outside a call)."""
    call = _current.get()
    if call is None:
        return
    call.namespace = namespace or call.namespace
    call.profile = profile or call.profile
    call.query = query or call.query


def finish(
    call: Call, code: str, metrics: Metrics | None, *, log_queries: bool, http_status: int | None = None
) -> None:
    """Count the call, time it, and write its access log line."""
    elapsed = time.perf_counter() - call.started
    if metrics is not None:
        metrics.requests.labels(call.transport, call.operation, code).inc()
        metrics.latency.labels(call.transport, call.operation).observe(elapsed)
    if call.operation in UNLOGGED:
        return
    log_request(
        transport=call.transport,
        route=call.operation,
        status=code,
        http_status=http_status,
        latency_ms=round(elapsed * 1000, 2),
        request_id=call.request_id,
        namespace=call.namespace,
        profile=call.profile,
        query=call.query if log_queries else None,
    )
