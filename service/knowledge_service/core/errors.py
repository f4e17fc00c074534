"""Domain errors: the one table that gives each its HTTP status and its gRPC status code name.

``code`` is the name of the gRPC status (``grpc.StatusCode[code]``) and the ``code`` of the JSON
error body; each front door maps an error through this table and nothing else.
"""

from __future__ import annotations


class KnowledgeError(Exception):
    """Base of every error the service reports to a caller."""

    http_status = 500
    code = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return {"error": body}


class InvalidArgument(KnowledgeError):
    """The request is malformed or over a limit; the message says what to change."""

    http_status = 422
    code = "INVALID_ARGUMENT"


class PayloadTooLarge(InvalidArgument):
    """The request body is over the size cap."""

    http_status = 413


class Unauthenticated(KnowledgeError):
    """No API key, or an unknown one."""

    http_status = 401
    code = "UNAUTHENTICATED"


class PermissionDenied(KnowledgeError):
    """The key is valid but not for this namespace or role."""

    http_status = 403
    code = "PERMISSION_DENIED"


class NotFound(KnowledgeError):
    http_status = 404
    code = "NOT_FOUND"


class Conflict(KnowledgeError):
    """A concurrent change won (e.g. a profile's expected_version is stale); re-read and retry."""

    http_status = 409
    code = "ABORTED"


class PreconditionFailed(KnowledgeError):
    """A required check did not pass (e.g. the evaluation gate on a profile change)."""

    http_status = 412
    code = "FAILED_PRECONDITION"


class Overloaded(KnowledgeError):
    """Too much work in flight; ``retry_after_s`` says when to try again."""

    http_status = 429
    code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, field: str | None = None, retry_after_s: float = 1.0) -> None:
        super().__init__(message, field=field)
        self.retry_after_s = retry_after_s

    def to_dict(self) -> dict[str, object]:
        body = super().to_dict()
        body["error"]["retry_after_ms"] = int(self.retry_after_s * 1000)  # type: ignore[index]
        return body


class DeadlineExceeded(KnowledgeError):
    """The caller's deadline passed before the work could finish."""

    http_status = 504
    code = "DEADLINE_EXCEEDED"


class Unavailable(KnowledgeError):
    """A dependency (store, model) cannot serve; retrying later may help."""

    http_status = 503
    code = "UNAVAILABLE"


class StoreBusy(Unavailable):
    """The embedded store is opened by another process."""


def from_validation_error(exc: Exception) -> InvalidArgument:
    """Turn a pydantic ValidationError into one InvalidArgument naming each field and its limit."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return InvalidArgument(str(exc))
    parts: list[str] = []
    first_field: str | None = None
    for err in errors():
        loc = ".".join(
            f"[{p}]" if isinstance(p, int) else str(p) for p in err.get("loc", ()) if p != "body"
        ).replace(".[", "[")
        first_field = first_field or loc or None
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return InvalidArgument("; ".join(parts) or "invalid request", field=first_field)


def _table() -> dict[int, str]:
    table: dict[int, str] = {200: "OK", 400: "INVALID_ARGUMENT", 405: "UNIMPLEMENTED"}
    stack: list[type[KnowledgeError]] = [KnowledgeError]
    while stack:
        cls = stack.pop()
        table.setdefault(cls.http_status, cls.code)
        stack.extend(cls.__subclasses__())
    return table


_BY_HTTP_STATUS = _table()


def code_for_http_status(status: int) -> str:
    """The code an HTTP status stands for in this table (2xx is OK), for logs and metrics."""
    if 200 <= status < 300:
        return "OK"
    return _BY_HTTP_STATUS.get(status, "INVALID_ARGUMENT" if 400 <= status < 500 else "INTERNAL")
