"""Routes declared beside module-level handlers and added to an app in one call.

Routes go on the app itself (``app.add_api_route``), not through an included router, so the
access guard, which matches a request against ``app.routes`` before the body is read, sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

Handler = Callable[..., Any]


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
            app.add_api_route(path, handler, methods=[method], name=name, **options)
