"""The one guard every gRPC handler goes through: the API key check for the RPC's role and
namespace, the error table (domain errors keep their code, anything else is INTERNAL, never with
details), the retry-after trailer on overload, metrics and the access log line."""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from pydantic import ValidationError

from .auth import ALL, Role
from .errors import KnowledgeError, Overloaded, from_validation_error
from .logs import log_request

log = logging.getLogger(__name__)

_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[Any]])


# The role each RPC needs, and the namespace it acts on: the request's own (NS), every namespace
# (ALL: shared profiles) or none (reading profiles). IngestStream checks each message's namespace.
NS = "request"
_ACCESS: dict[str, tuple[Role, str | None]] = {
    "Search": ("search", NS),
    "GetDocument": ("search", NS),
    "CountDocuments": ("search", NS),
    "Ingest": ("ingest", NS),
    "IngestStream": ("ingest", None),
    "DeleteDocuments": ("admin", NS),
    "ListProfiles": ("search", None),
    "GetProfile": ("search", None),
    "ListProfileVersions": ("search", None),
    "PutProfile": ("admin", ALL),
    "RollbackProfile": ("admin", ALL),
    "GetNamespaceSettings": ("search", NS),
    "SetNamespaceSettings": ("admin", NS),
}


def authorization(context: grpc.aio.ServicerContext) -> str | None:
    return dict(context.invocation_metadata() or ()).get("authorization")


def request_id(context: grpc.aio.ServicerContext) -> str:
    return dict(context.invocation_metadata() or ()).get("x-request-id") or uuid.uuid4().hex


def guarded(handler: _Handler) -> _Handler:
    """The one error table for gRPC (domain errors keep their code, anything else is INTERNAL),
    after checking the caller's API key for the RPC's role and namespace."""
    role, scope = _ACCESS[handler.__name__]

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            try:
                namespace = request.namespace if scope == NS else scope
                self._core.keys.check(authorization(context), role, namespace)
                return await handler(self, request, context)
            except grpc.aio.AbortError:
                code = grpc.StatusCode.UNKNOWN
                raise
            except ValidationError as exc:
                err: KnowledgeError = from_validation_error(exc)
            except KnowledgeError as exc:
                err = exc
            except Exception:
                log.exception("gRPC %s failed", handler.__name__)
                err = KnowledgeError("internal error")
            code = err.grpc_code
            hint = (
                (("retry-after-ms", str(int(err.retry_after_s * 1000))),)
                if isinstance(err, Overloaded)
                else ()
            )
            await context.abort(code, err.message, trailing_metadata=hint)
        finally:
            elapsed = time.perf_counter() - started
            if (metrics := getattr(self._core, "metrics", None)) is not None:
                metrics.requests.labels("grpc", handler.__name__, code.name).inc()
                metrics.latency.labels("grpc", handler.__name__).observe(elapsed)
            log_request(
                transport="grpc",
                route=handler.__name__,
                status=code.name,
                latency_ms=round(elapsed * 1000, 2),
                request_id=request_id(context),
                namespace=getattr(request, "namespace", None) or None,
            )

    return wrapper  # type: ignore[return-value]
