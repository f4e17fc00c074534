"""Storage backends: Qdrant Edge (embedded default) and a Qdrant server through qdrant-client."""

from __future__ import annotations

from ..config import Settings
from .base import ChunkPoint, Hit, QueryPlan, Store


def open_store(settings: Settings, *, dim: int, model: str) -> Store:
    """Open the backend the settings select: a Qdrant server when a URL is set, else Edge."""
    if settings.qdrant_url:
        from .remote import RemoteStore

        return RemoteStore(settings, dim=dim, model=model)
    from .edge import EdgeStore

    return EdgeStore(settings, dim=dim, model=model)


__all__ = ["ChunkPoint", "Hit", "QueryPlan", "Store", "open_store"]
