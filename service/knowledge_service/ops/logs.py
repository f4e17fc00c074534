"""Logging: JSON lines (python-json-logger) or text, level from settings, one line per request.

The access line carries the request id, trace id, transport, route or RPC, namespace, profile,
status and latency; never the query text unless ``KNOWLEDGE_LOG_QUERIES`` is set, and never keys.
"""

from __future__ import annotations

import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from knowledge_service.core.config import Settings
from knowledge_service.ops.tracing import current_trace_id

access = logging.getLogger("knowledge.access")


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


def log_request(**fields: Any) -> None:
    """One access line: transport, route, status, latency_ms, request_id, namespace, profile..."""
    fields = {k: v for k, v in fields.items() if v is not None}
    if (trace_id := current_trace_id()) is not None:
        fields["trace_id"] = trace_id
    access.info("request", extra=fields)
