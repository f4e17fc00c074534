"""Where HTTP handlers find the composition root: the app's state, set by create_app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from knowledge_service.app import Knowledge


def knowledge_of(request: Request) -> Knowledge:
    """The Knowledge behind the app (the HTTP guard has already checked the caller's key)."""
    return request.app.state.knowledge
