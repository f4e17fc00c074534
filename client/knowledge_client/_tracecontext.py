"""W3C trace context on outgoing calls, so the caller's span (a crew's, say) is the parent of the
service's. Only when OpenTelemetry is installed: the client does not depend on it."""

from __future__ import annotations

from collections.abc import Callable

_inject: Callable[[dict[str, str]], None] | None
try:
    from opentelemetry.propagate import inject
except ImportError:  # pragma: no cover - exercised by the clean-venv test
    _inject = None
else:
    _inject = inject


def trace_headers() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) for the current span; empty without one."""
    if _inject is None:
        return {}
    carrier: dict[str, str] = {}
    _inject(carrier)
    return carrier
