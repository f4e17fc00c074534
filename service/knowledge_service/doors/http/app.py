"""The HTTP front door (FastAPI): ``create_app`` assembles the guard, the call record, the error
handlers and the routes. Handlers translate and delegate to the pipelines; nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.core.errors import code_for_http_status
from knowledge_service.doors import calls
from knowledge_service.doors.calls import Call
from knowledge_service.doors.http.errors import install_error_handlers
from knowledge_service.doors.http.guard import AccessGuard
from knowledge_service.doors.http.routes_documents import add_document_routes
from knowledge_service.doors.http.routes_ops import add_ops_routes
from knowledge_service.doors.http.routes_profiles import add_profile_routes
from knowledge_service.ops.tracing import instrument_app


def create_app(settings: Settings, knowledge: Knowledge | None = None) -> FastAPI:
    """Build the app; it opens (and closes) its own Knowledge unless one is given."""
    docs = settings.docs_enabled
    app = FastAPI(
        title="knowledge side-car",
        version="1",
        lifespan=_lifespan(settings, knowledge),
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    if knowledge is not None:
        app.state.knowledge = knowledge  # usable before (or without) the lifespan
    instrument_app(app)
    install_error_handlers(app)
    # The key, the role and the body cap are checked here, before FastAPI reads the body.
    app.add_middleware(
        AccessGuard, health_public=settings.health_public, metrics_public=settings.metrics_public
    )
    app.middleware("http")(_recorder(settings.log_queries))  # outermost: refusals are recorded too
    add_document_routes(app)
    add_profile_routes(app)
    add_ops_routes(app)
    return app


def _lifespan(
    settings: Settings, knowledge: Knowledge | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.knowledge = knowledge if knowledge is not None else await Knowledge.open(settings)
        try:
            yield
        finally:
            if knowledge is None:
                await app.state.knowledge.close()

    return lifespan


def _recorder(log_queries: bool) -> Callable[..., Any]:
    async def record(request: Request, call_next: Any) -> Any:
        """The call's metrics and access log line (calls.py); echoes or assigns x-request-id."""
        call = calls.begin(Call("http", "unmatched", calls.request_id(request.headers.get("x-request-id"))))
        response = await call_next(request)
        route = request.scope.get("route")
        call.operation = getattr(route, "name", None) or "unmatched"
        call.namespace = call.namespace or request.scope.get("path_params", {}).get("namespace")
        status = response.status_code
        calls.finish(
            call,
            code_for_http_status(status),
            request.app.state.knowledge.metrics,
            log_queries=log_queries,
            http_status=status,
        )
        response.headers["x-request-id"] = call.request_id
        return response

    return record
