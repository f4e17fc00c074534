"""The HTTP side of API keys: every route asks for the core through ``allow``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from .auth import Role

if TYPE_CHECKING:
    from .core import KnowledgeCore


def allow(request: Request, role: Role, namespace: str | None) -> KnowledgeCore:
    """The core, once the caller's API key may act in ``role`` on ``namespace``."""
    core: KnowledgeCore = request.app.state.core
    core.keys.check(request.headers.get("authorization"), role, namespace)
    return core
