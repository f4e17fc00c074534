"""OpenTelemetry tracing, off by default (``KNOWLEDGE_OTEL_ENABLED``).

When on, spans go to an OTLP collector (``KNOWLEDGE_OTEL_ENDPOINT``); the FastAPI and gRPC
instrumentations open one server span per request (continuing the caller's trace context) and
the search pipeline adds one span per stage, tagged with the cache outcome, candidate counts and
the storage backend. When off, ``tracer`` is OpenTelemetry's no-op tracer, and :func:`span`
skips even that (a search opens several spans; the no-op ones cost about 20 µs each).
"""

from __future__ import annotations

import contextlib
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from knowledge_service.core.config import Settings

tracer = trace.get_tracer("knowledge_service")
_provider: TracerProvider | None = None


def setup_tracing(settings: Settings, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """Install the process's tracer provider (once); ``exporter`` replaces OTLP (tests)."""
    global _provider
    if _provider is not None or (exporter is None and not settings.otel_enabled):
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_endpoint)))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def enabled() -> bool:
    return _provider is not None


_NO_SPAN = contextlib.nullcontext(trace.INVALID_SPAN)


def span(name: str, attributes: dict[str, Any] | None = None) -> contextlib.AbstractContextManager[Any]:
    """``tracer.start_as_current_span(name, attributes=...)`` once :func:`setup_tracing` has
    installed a provider; before that, a span that records nothing, at no cost."""
    if _provider is None:
        return _NO_SPAN
    return tracer.start_as_current_span(name, attributes=attributes)


def instrument_app(app: Any) -> None:
    if _provider is not None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=_provider, excluded_urls="healthz,readyz,metrics"
        )


def grpc_interceptors() -> list[Any]:
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor(tracer_provider=_provider)]


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None
