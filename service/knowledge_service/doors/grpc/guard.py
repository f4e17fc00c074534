"""The gRPC side of access control, the error table, metrics and the access log.

- ``AccessInterceptor`` checks the key and the role of every knowledge.v1 call against the access
  table (access.py) before the request message is deserialised: a refused call never costs a
  parse. Health checks and reflection are not in the table and pass.
- ``guarded`` wraps each handler: it checks the request's namespace against the key once the
  message is parsed (a ``namespace`` or a ``body`` scope: on gRPC both are the message's
  ``namespace`` field), maps errors through the one table (domain errors keep their code,
  anything else is INTERNAL, never with details), adds the retry-after trailer on overload, and
  records the call (calls.py: metrics and the access log line, the same as on HTTP).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from pydantic import ValidationError

from knowledge_service.core import limits as L
from knowledge_service.core.errors import KnowledgeError, Overloaded, PayloadTooLarge, from_validation_error
from knowledge_service.doors import calls
from knowledge_service.doors.access import OPERATIONS
from knowledge_service.doors.calls import Call
from knowledge_service.ops.auth import ALL, KeyRing

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
        handler = await continuation(details)
        if handler is None or handler.request_streaming:
            return handler
        # A body-less HTTP call (cap 0) carries its path's fields in the message: the small cap.
        return _capped(handler, max(op.max_body, L.MAX_SMALL_BODY_BYTES))

    async def _refusal(self, continuation: Any, details: Any, err: KnowledgeError, metadata: dict) -> Any:
        call = Call("grpc", details.method.removeprefix(SERVICE), request_id=_request_id(metadata))
        calls.finish(call, err.code, self._metrics, log_queries=False)

        async def refuse(_request: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(status_of(err), err.message, trailing_metadata=_trailers(err))

        handler = await continuation(details)
        # No request deserializer: the refused message is never parsed.
        if handler is not None and handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(refuse)
        return grpc.unary_unary_rpc_method_handler(refuse)


@dataclass(frozen=True)
class TooLarge:
    """Stands for a request message over its operation's byte cap, which is never parsed."""

    size: int
    cap: int


def _capped(handler: Any, cap: int) -> Any:
    """The unary handler with a deserializer that refuses a message over ``cap`` bytes unread,
    as the HTTP guard refuses a body (a stream's messages are bounded by IngestStream itself)."""
    parse = handler.request_deserializer

    def checked(raw: bytes) -> Any:
        return TooLarge(len(raw), cap) if len(raw) > cap else parse(raw)

    return grpc.unary_unary_rpc_method_handler(
        handler.unary_unary, request_deserializer=checked, response_serializer=handler.response_serializer
    )


def authorization(context: grpc.aio.ServicerContext) -> str | None:
    return dict(context.invocation_metadata() or ()).get("authorization")


def _request_id(metadata: dict[str, Any]) -> str:
    return calls.request_id(metadata.get("x-request-id"))


def status_of(err: KnowledgeError) -> grpc.StatusCode:
    """The gRPC status of an error, from the one error table (core/errors.py)."""
    return grpc.StatusCode[err.code]


def guarded(handler: _Handler) -> _Handler:
    """The one error table for gRPC (domain errors keep their code, anything else is INTERNAL),
    after checking the request's namespace against the caller's key (the interceptor has checked
    the key and the role)."""
    scope = OPERATIONS[handler.__name__].scope

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        metadata = dict(context.invocation_metadata() or ())
        namespace = getattr(request, "namespace", None) or None  # (a stream has none)
        call = calls.begin(Call("grpc", handler.__name__, _request_id(metadata), namespace=namespace))
        code = "OK"
        try:
            try:
                if isinstance(request, TooLarge):
                    raise PayloadTooLarge(
                        f"request message is {request.size} bytes, over the {request.cap}-byte cap for "
                        f"{handler.__name__}; send less per request",
                        field="body",
                    )
                if scope in ("namespace", "body") and hasattr(request, "namespace"):
                    keys = self._core.keys
                    keys.check_namespace(keys.authenticate(metadata.get("authorization")), request.namespace)
                return await handler(self, request, context)
            except grpc.aio.AbortError:
                code = "UNKNOWN"
                raise
            except ValidationError as exc:
                err: KnowledgeError = from_validation_error(exc)
            except KnowledgeError as exc:
                err = exc
            except Exception:
                log.exception("gRPC %s failed", handler.__name__)
                err = KnowledgeError("internal error")
            code = err.code
            await context.abort(status_of(err), err.message, trailing_metadata=_trailers(err))
        finally:
            settings = getattr(self._core, "settings", None)
            log_queries = bool(settings and settings.log_queries)
            calls.finish(call, code, getattr(self._core, "metrics", None), log_queries=log_queries)

    return wrapper  # type: ignore[return-value]
