"""gRPC transports: one channel per transport, opened once and shared by every call.

A ``grpc.Channel`` is thread-safe, so one :class:`GrpcTransport` serves any number of threads. The
channel reconnects on its own; its reconnect backoff starts at 100 ms (gRPC's default is 1 s) so
that the client's own retries find a restarted service quickly. Bodies become request messages,
and response messages bodies, in ``_wire`` (protobuf's ``json_format``), by the RPC's name.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

import grpc

from ._exceptions import InvalidRequest, KnowledgeError, from_grpc
from ._tracecontext import trace_headers
from ._wire import Body, to_body, to_message
from .proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc

MAX_MESSAGE_BYTES = 64 * 1024 * 1024

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def _metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


class _TracedMetadata:
    _metadata: tuple[tuple[str, str], ...]

    def _call_metadata(self) -> tuple[tuple[str, str], ...] | None:
        """The key, plus the current trace context when OpenTelemetry is installed."""
        return (*self._metadata, *trace_headers().items()) or None


def _error(exc: grpc.RpcError) -> KnowledgeError:
    code = exc.code() if callable(getattr(exc, "code", None)) else grpc.StatusCode.UNKNOWN
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    trailers = exc.trailing_metadata() if callable(getattr(exc, "trailing_metadata", None)) else ()
    return from_grpc(code or grpc.StatusCode.UNKNOWN, details, trailers)


class _Requests:
    """Turns bodies into messages lazily; a body that cannot be converted ends the stream."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.error: KnowledgeError | None = None
        self.count = 0

    def _one(self, body: Body) -> Any:
        try:
            return to_message(self.method, body)
        except KnowledgeError as exc:
            self.error = InvalidRequest(
                f"IngestStream batch {self.count}: {exc.detail} (earlier batches were sent)",
                field=exc.field,
            )
        except (KeyError, TypeError, ValueError) as exc:
            self.error = InvalidRequest(f"IngestStream batch {self.count}: malformed ({exc!r})")
        return None

    def sync(self, bodies: Iterable[Body]) -> Iterator[Any]:
        for body in bodies:
            if (msg := self._one(body)) is None:
                return
            self.count += 1
            yield msg

    async def aio(self, bodies: AsyncIterable[Body] | Iterable[Body]) -> AsyncIterator[Any]:
        if isinstance(bodies, AsyncIterable):
            async for body in bodies:
                if (msg := self._one(body)) is None:
                    return
                self.count += 1
                yield msg
        else:
            for msg in self.sync(bodies):
                yield msg


class GrpcTransport(_TracedMetadata):
    """Blocking gRPC transport (``target`` like ``"127.0.0.1:50051"``).

    Args:
        target: host:port of the service's gRPC front door.
        api_key: Sent as ``authorization: Bearer <key>`` metadata on every call.
        credentials: TLS channel credentials; None for a plaintext channel.
        options: Extra channel options, appended to the defaults.
    """

    def __init__(
        self,
        target: str,
        *,
        api_key: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        options: list[tuple[str, Any]] | None = None,
    ) -> None:
        opts = CHANNEL_OPTIONS + list(options or [])
        self.target = target
        self._channel = (
            grpc.secure_channel(target, credentials, options=opts)
            if credentials is not None
            else grpc.insecure_channel(target, options=opts)
        )
        self._stub = pb_grpc.KnowledgeServiceStub(self._channel)
        self._metadata = _metadata(api_key)

    def call(self, method: str, body: Body, *, timeout: float | None) -> Body:
        request = to_message(method, body)
        try:
            response = getattr(self._stub, method)(request, timeout=timeout, metadata=self._call_metadata())
        except grpc.RpcError as exc:
            raise _error(exc) from None
        return to_body(response)

    def stream(self, method: str, bodies: Iterable[Body], *, timeout: float | None) -> Body:
        requests = _Requests(method)
        try:
            response = getattr(self._stub, method)(
                requests.sync(bodies), timeout=timeout, metadata=self._call_metadata()
            )
        except grpc.RpcError as exc:
            raise (requests.error or _error(exc)) from None
        if requests.error is not None:
            raise requests.error
        return to_body(response)

    def close(self) -> None:
        self._channel.close()


class AsyncGrpcTransport(_TracedMetadata):
    """asyncio gRPC transport; the channel is opened on first use, in the caller's event loop.

    Args:
        target: host:port of the service's gRPC front door.
        api_key: Sent as ``authorization: Bearer <key>`` metadata on every call.
        credentials: TLS channel credentials; None for a plaintext channel.
        options: Extra channel options, appended to the defaults.
    """

    def __init__(
        self,
        target: str,
        *,
        api_key: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        options: list[tuple[str, Any]] | None = None,
    ) -> None:
        self.target = target
        self._credentials = credentials
        self._options = CHANNEL_OPTIONS + list(options or [])
        self._metadata = _metadata(api_key)
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    def _the_stub(self) -> Any:
        if self._stub is None:
            if self._credentials is not None:
                channel = grpc.aio.secure_channel(self.target, self._credentials, options=self._options)
            else:
                channel = grpc.aio.insecure_channel(self.target, options=self._options)
            self._channel, self._stub = channel, pb_grpc.KnowledgeServiceStub(channel)
        return self._stub

    async def call(self, method: str, body: Body, *, timeout: float | None) -> Body:
        request = to_message(method, body)
        try:
            response = await getattr(self._the_stub(), method)(
                request, timeout=timeout, metadata=self._call_metadata()
            )
        except grpc.RpcError as exc:
            raise _error(exc) from None
        return to_body(response)

    async def stream(
        self, method: str, bodies: AsyncIterable[Body] | Iterable[Body], *, timeout: float | None
    ) -> Body:
        requests = _Requests(method)
        try:
            response = await getattr(self._the_stub(), method)(
                requests.aio(bodies), timeout=timeout, metadata=self._call_metadata()
            )
        except grpc.RpcError as exc:
            raise (requests.error or _error(exc)) from None
        if requests.error is not None:
            raise requests.error
        return to_body(response)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None
