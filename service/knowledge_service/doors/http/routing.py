"""Routes declared beside module-level handlers and added to an app in one call.

Routes go on the app itself (``app.add_api_route``), not through an included router, so the
access guard, which matches a request against ``app.routes`` before the body is read, sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

Handler = Callable[..., Any]


class ErrorDetail(BaseModel):
    code: str = Field(description="INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE, ...")
    message: str = Field(description="What went wrong and what to change.")
    field: str | None = Field(None, description="The request field at fault, where there is one.")
    retry_after_ms: int | None = Field(None, description="Overload (429): when to try again.")


class ErrorBody(BaseModel):
    """Every failure's body, on every route (errors.py)."""

    error: ErrorDetail


# What any route may answer besides its success (the error table in core/errors.py, plus 400 for
# a body that is not JSON and 405 for a method the path does not take); 422 replaces FastAPI's own
# validation shape, which this service never sends.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "The body could not be parsed."),
        (401, "No valid API key."),
        (403, "The key may not do this here."),
        (404, "No such namespace, document, profile or route."),
        (405, "The path does not take this method."),
        (409, "A conflicting change won (retry with the current state)."),
        (412, "A precondition (expected version) did not hold."),
        (413, "The body or an upload is over its cap."),
        (422, "The request is malformed or over a limit; the message says what to change."),
        (429, "Overloaded: retry after Retry-After."),
        (503, "A dependency (the store) is unavailable."),
        (504, "The deadline passed."),
    )
}


class Routes:
    def __init__(self) -> None:
        self._routes: list[tuple[str, str, Handler, str, dict[str, Any]]] = []

    def route(self, method: str, path: str, *, name: str, **options: Any) -> Callable[[Handler], Handler]:
        """Declare ``path`` for the decorated handler; ``name`` is its operation (the RPC's name)."""

        def register(handler: Handler) -> Handler:
            self._routes.append((method, path, handler, name, options))
            return handler

        return register

    def install(self, app: FastAPI) -> None:
        for method, path, handler, name, options in self._routes:
            responses = {**ERROR_RESPONSES, **options.pop("responses", {})}
            app.add_api_route(path, handler, methods=[method], name=name, responses=responses, **options)
