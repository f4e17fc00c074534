"""The HTTP guard: ASGI middleware that decides before FastAPI reads a byte of the body.

For each request it finds the route, looks its operation up in the access table (access.py),
checks the key, the role and a path namespace, and only then lets the body through, counting its
bytes as they arrive (with or without Content-Length, so chunked uploads count too). A body over
the operation's cap is answered 413 as soon as the cap is passed, and nothing more is read.
Refusals use the service's error shape and table (errors.py).
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from knowledge_service.core import limits as L
from knowledge_service.core.errors import KnowledgeError
from knowledge_service.doors.access import OPERATIONS, Operation
from knowledge_service.doors.http.errors import BodyTooLarge, error_response, too_large
from knowledge_service.ops.auth import ALL


class AccessGuard:
    """Key, role and path namespace first; then the body, counted against the operation's cap."""

    def __init__(self, app: ASGIApp, *, health_public: bool, metrics_public: bool) -> None:
        self.app = app
        self.public = {"Health"} if health_public else set()
        if metrics_public:
            self.public.add("Metrics")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name, params = _route(scope)
        op = OPERATIONS.get(name or "")
        if op is not None and name not in self.public:
            try:
                key = self._admit(scope, op, params)
            except KnowledgeError as err:
                await error_response(err)(scope, receive, send)
                return
            scope.setdefault("state", {})["api_key"] = key
        cap = op.max_body if op is not None else L.MAX_SMALL_BODY_BYTES
        length = _content_length(scope)
        if length is not None and length > cap:
            await error_response(too_large(cap))(scope, receive, send)
            return
        await self.app(scope, _counted(receive, cap), send)

    @staticmethod
    def _admit(scope: Scope, op: Operation, params: dict[str, Any]) -> Any:
        keys = scope["app"].state.knowledge.keys
        authorization = _header(scope, b"authorization")
        key = keys.admit(authorization, op.role)
        if op.scope == "namespace":
            keys.check_namespace(key, str(params.get("namespace", "")))
        elif op.scope == "all":
            keys.check_namespace(key, ALL)
        return key


def _route(scope: Scope) -> tuple[str | None, dict[str, Any]]:
    """The name of the route that will serve this request, and its path parameters."""
    for route in scope["app"].router.routes:
        match, child = route.matches(scope)
        if match == Match.FULL:
            scope["route"] = route  # for the access log, which runs outside this guard
            return getattr(route, "name", None), child.get("path_params", {})
    return None, {}


def _counted(receive: Receive, cap: int) -> Receive:
    seen = 0

    async def receive_counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise BodyTooLarge(cap)
        return message

    return receive_counted


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _content_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    return int(raw) if raw is not None and raw.strip().isdigit() else None
