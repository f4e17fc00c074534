"""HTTP routes for operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from knowledge_service.doors.http.routing import Routes
from knowledge_service.doors.http.state import knowledge_of

routes = Routes()  # ``/healthz``, ``/readyz`` and ``/metrics`` (outside the API's versioned routes).


@routes.route("GET", "/metrics", include_in_schema=False, name="Metrics")
async def metrics(request: Request) -> Response:
    """Prometheus exposition."""
    knowledge = knowledge_of(request)
    await knowledge.health.readiness()  # refreshes the component gauges
    return Response(knowledge.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@routes.route("GET", "/healthz", name="Health")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@routes.route("GET", "/readyz", name="Health")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the store answers (a cache outage only degrades). Each component is a word."""
    state = await knowledge_of(request).health.readiness()
    ready = state["store"] == "ok"
    return JSONResponse({"ready": ready, **state}, status_code=200 if ready else 503)


def add_ops_routes(app: FastAPI) -> None:
    routes.install(app)
