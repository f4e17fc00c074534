"""The client's exceptions: one tree for both transports.

Every failure of a call raises a subclass of :class:`KnowledgeError`::

    KnowledgeError                 anything else (INTERNAL, UNKNOWN, HTTP 500, a malformed answer)
    ├── InvalidRequest             INVALID_ARGUMENT / HTTP 400, 413, 422: fix the request; never retried
    ├── Unauthorized               UNAUTHENTICATED, PERMISSION_DENIED / HTTP 401, 403
    ├── NotFound                   NOT_FOUND / HTTP 404 (an unknown document or profile)
    ├── Conflict                   ABORTED / HTTP 409: a concurrent change won (stale expected_version)
    ├── PreconditionFailed         FAILED_PRECONDITION / HTTP 412: a required check failed (eval gate)
    ├── Overloaded                 RESOURCE_EXHAUSTED / HTTP 429: transient, retried (honours retry-after)
    ├── Unavailable                UNAVAILABLE / HTTP 502, 503, no connection: transient, retried
    └── DeadlineExceeded           DEADLINE_EXCEEDED / HTTP 504, an HTTP timeout: the deadline
                                   passed; not retried (the call's deadline is spent)

Both transports read one table, :data:`STATUS_TABLE` (gRPC status name, HTTP statuses,
exception), so a status means the same exception over either.

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


# The one status table of both transports: a gRPC status name, the HTTP statuses that mean it (each
# in one row only), and the exception either raises. Statuses not listed are a plain KnowledgeError.
STATUS_TABLE: tuple[tuple[str, tuple[int, ...], type[KnowledgeError]], ...] = (
    ("INVALID_ARGUMENT", (400, 413, 422), InvalidRequest),
    ("OUT_OF_RANGE", (), InvalidRequest),
    ("UNAUTHENTICATED", (401,), Unauthorized),
    ("PERMISSION_DENIED", (403,), Unauthorized),
    ("NOT_FOUND", (404,), NotFound),
    ("ABORTED", (409,), Conflict),
    ("FAILED_PRECONDITION", (412,), PreconditionFailed),
    ("RESOURCE_EXHAUSTED", (429,), Overloaded),
    ("UNAVAILABLE", (502, 503), Unavailable),
    ("DEADLINE_EXCEEDED", (504,), DeadlineExceeded),
)

_BY_GRPC = {name: cls for name, _, cls in STATUS_TABLE}
_BY_HTTP = {status: (name, cls) for name, statuses, cls in STATUS_TABLE for status in statuses}


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
    cls = _BY_GRPC.get(code.name, KnowledgeError)
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
    name, cls = _BY_HTTP.get(status, (KnowledgeError.default_status, KnowledgeError))
    return cls(
        str(message or f"HTTP {status}"),
        status=str(code or name),
        http_status=status,
        field=field if isinstance(field, str) else None,
        retry_after=parse_retry_after(retry_after),
    )
