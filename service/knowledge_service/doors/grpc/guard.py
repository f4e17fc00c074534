"""The gRPC side of access control, the error table, metrics and the access log.

- ``AccessInterceptor`` checks the key and the role of every knowledge.v1 call against the access
  table (access.py) before the request message is deserialised: a refused call never costs a
  parse. Health checks and reflection are not in the table and pass.
- ``guarded`` wraps each handler: it checks the request's namespace against the key (once the
  message is parsed), maps errors through the one table (domain errors keep their code, anything
  else is INTERNAL, never with details), adds the retry-after trailer on overload, counts the call
  and writes its access log line.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from pydantic import ValidationError

from knowledge_service.core.errors import KnowledgeError, Overloaded, from_validation_error
from knowledge_service.doors.access import OPERATIONS
from knowledge_service.ops.auth import ALL, KeyRing
from knowledge_service.ops.logs import log_request

if TYPE_CHECKING:
    from knowledge_service.ops.metrics import Metrics

log = logging.getLogger(__name__)

_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[Any]])
SERVICE = "/knowledge.v1.KnowledgeService/"


def _trailers(err: KnowledgeError) -> tuple[tuple[str, str], ...]:
    return (("retry-after-ms", str(int(err.retry_after_s * 1000))),) if isinstance(err, Overloaded) else ()


class AccessInterceptor(grpc.aio.ServerInterceptor):
    """Key and role of each knowledge.v1 call, before its message is read."""

    def __init__(self, keys: KeyRing, metrics: Metrics) -> None:
        self._keys = keys
        self._metrics = metrics

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: grpc.HandlerCallDetails
    ) -> Any:
        method = details.method
        op = OPERATIONS.get(method.removeprefix(SERVICE)) if method.startswith(SERVICE) else None
        if op is None:
            return await continuation(details)
        metadata = dict(details.invocation_metadata or ())
        try:
            key = self._keys.admit(metadata.get("authorization"), op.role)
            if op.scope == "all":
                self._keys.check_namespace(key, ALL)
        except KnowledgeError as err:
            return await self._refusal(continuation, details, err, metadata)
        return await continuation(details)

    async def _refusal(self, continuation: Any, details: Any, err: KnowledgeError, metadata: dict) -> Any:
        name = details.method.removeprefix(SERVICE)
        self._metrics.requests.labels("grpc", name, err.grpc_code.name).inc()
        log_request(
            transport="grpc",
            route=name,
            status=err.grpc_code.name,
            latency_ms=0.0,
            request_id=metadata.get("x-request-id") or uuid.uuid4().hex,
        )

        async def refuse(_request: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(err.grpc_code, err.message, trailing_metadata=_trailers(err))

        handler = await continuation(details)
        # No request deserializer: the refused message is never parsed.
        if handler is not None and handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(refuse)
        return grpc.unary_unary_rpc_method_handler(refuse)


def authorization(context: grpc.aio.ServicerContext) -> str | None:
    return dict(context.invocation_metadata() or ()).get("authorization")


def request_id(context: grpc.aio.ServicerContext) -> str:
    return dict(context.invocation_metadata() or ()).get("x-request-id") or uuid.uuid4().hex


def guarded(handler: _Handler) -> _Handler:
    """The one error table for gRPC (domain errors keep their code, anything else is INTERNAL),
    after checking the request's namespace against the caller's key (the interceptor has checked
    the key and the role)."""
    scope = OPERATIONS[handler.__name__].scope

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            try:
                if scope == "namespace" and hasattr(request, "namespace"):  # not a stream's iterator
                    keys = self._core.keys
                    keys.check_namespace(keys.authenticate(authorization(context)), request.namespace)
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
            await context.abort(code, err.message, trailing_metadata=_trailers(err))
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
