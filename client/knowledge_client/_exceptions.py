"""The client's exceptions: one tree for both transports.

Every failure of a call raises a subclass of :class:`KnowledgeError`::

    KnowledgeError                 anything else (INTERNAL, UNKNOWN, HTTP 500, a malformed answer)
    ├── InvalidRequest             INVALID_ARGUMENT / HTTP 400, 413, 422: fix the request; never retried
    ├── Unauthorized               UNAUTHENTICATED, PERMISSION_DENIED / HTTP 401, 403
    ├── NotFound                   NOT_FOUND / HTTP 404 (an unknown document or profile)
    ├── Conflict                   ABORTED / HTTP 409: a concurrent change won (stale expected_version)
    ├── PreconditionFailed         FAILED_PRECONDITION / HTTP 412: a required check failed (eval gate)
    ├── Overloaded                 RESOURCE_EXHAUSTED / HTTP 429: transient, retried (honours retry-after)
    ├── Unavailable                UNAVAILABLE / HTTP 502, 503, 504, no connection: transient, retried
    └── DeadlineExceeded           DEADLINE_EXCEEDED / an HTTP timeout: the call's deadline passed

Each carries ``status`` (the gRPC status name, e.g. ``"INVALID_ARGUMENT"``, on both transports),
``detail`` (the service's message), ``http_status`` (HTTP only), ``field`` (the offending request
field when the service names one) and ``retry_after`` (seconds, when the service sent a hint).
``retryable`` says whether the same call may succeed later (Overloaded, Unavailable,
DeadlineExceeded); the client itself retries only Overloaded and Unavailable.
"""

from __future__ import annotations

import email.utils
import time

import grpc


class KnowledgeError(Exception):
    """Base of every error a knowledge client call raises."""

    default_status = "INTERNAL"
    retryable = False

    def __init__(
        self,
        detail: str,
        *,
        status: str | None = None,
        http_status: int | None = None,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status or self.default_status
        self.detail = detail
        self.http_status = http_status
        self.field = field
        self.retry_after = retry_after
        super().__init__(f"{self.status}: {detail}")


class InvalidRequest(KnowledgeError):
    """The request is malformed or over a limit; ``detail`` names the field and the limit."""

    default_status = "INVALID_ARGUMENT"


class Unauthorized(KnowledgeError):
    """The API key is missing, wrong, or not allowed this namespace."""

    default_status = "UNAUTHENTICATED"


class NotFound(KnowledgeError):
    """The document (or route) does not exist."""

    default_status = "NOT_FOUND"


class Conflict(KnowledgeError):
    """A concurrent change won (e.g. a profile's ``expected_version`` is stale); re-read, retry."""

    default_status = "ABORTED"


class PreconditionFailed(KnowledgeError):
    """A required check did not pass (e.g. the evaluation gate of a profile change)."""

    default_status = "FAILED_PRECONDITION"


class Overloaded(KnowledgeError):
    """The service sheds load; retry later (``retry_after`` when it said when)."""

    default_status = "RESOURCE_EXHAUSTED"
    retryable = True


class Unavailable(KnowledgeError):
    """The service or one of its dependencies cannot serve, or cannot be reached."""

    default_status = "UNAVAILABLE"
    retryable = True


class DeadlineExceeded(KnowledgeError):
    """The call did not finish within its deadline."""

    default_status = "DEADLINE_EXCEEDED"
    retryable = True


_BY_GRPC: dict[grpc.StatusCode, type[KnowledgeError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.OUT_OF_RANGE: InvalidRequest,
    grpc.StatusCode.UNAUTHENTICATED: Unauthorized,
    grpc.StatusCode.PERMISSION_DENIED: Unauthorized,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.FAILED_PRECONDITION: PreconditionFailed,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Overloaded,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}

_BY_HTTP: dict[int, type[KnowledgeError]] = {
    400: InvalidRequest,
    413: InvalidRequest,
    422: InvalidRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    429: Overloaded,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}

_HTTP_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    413: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "UNAVAILABLE",
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``retry-after`` value: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds)


def from_grpc(code: grpc.StatusCode, details: str | None, trailers: object = ()) -> KnowledgeError:
    """Map a gRPC status (and any ``retry-after``/``retry-after-ms`` trailer) to the tree."""
    retry_after = None
    for key, value in trailers or ():  # type: ignore[attr-defined]
        if key == "retry-after":
            retry_after = parse_retry_after(str(value))
        elif key == "retry-after-ms":
            ms = parse_retry_after(str(value))
            retry_after = None if ms is None else ms / 1000
    cls = _BY_GRPC.get(code, KnowledgeError)
    return cls(details or code.name, status=code.name, retry_after=retry_after)


def from_http(status: int, body: object, retry_after: str | None = None) -> KnowledgeError:
    """Map an HTTP error status and its body (``{"error": {"code", "message", "field"?}}``)."""
    code, message, field = None, None, None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code, message, field = error.get("code"), error.get("message"), error.get("field")
        elif "detail" in body:  # a framework's own error, e.g. an unknown route
            message = str(body["detail"])
    elif isinstance(body, str) and body.strip():
        message = body.strip()[:500]
    cls = _BY_HTTP.get(status, KnowledgeError)
    return cls(
        str(message or f"HTTP {status}"),
        status=str(code or _HTTP_STATUS_NAMES.get(status, cls.default_status)),
        http_status=status,
        field=field if isinstance(field, str) else None,
        retry_after=parse_retry_after(retry_after),
    )
