"""Storage backends: Qdrant Edge (embedded default) and a Qdrant server through qdrant-client."""

from __future__ import annotations

from knowledge_service.core.config import Settings
from knowledge_service.storage.base import Store
from knowledge_service.storage.meta import ClientMetaStore, EdgeMetaStore, MetaStore
from knowledge_service.storage.points import ChunkPoint, Hit, Marker, QueryPlan


def open_store(settings: Settings, *, dim: int, model: str) -> Store:
    """Open the backend the settings select: a Qdrant server when a URL is set, else Edge."""
    if settings.qdrant_url:
        from knowledge_service.storage.remote import RemoteStore

        return RemoteStore(settings, dim=dim, model=model)
    from knowledge_service.storage.edge import EdgeStore

    return EdgeStore(settings, dim=dim, model=model)


def open_meta_store(settings: Settings, store: Store) -> MetaStore:
    """The meta collection (profiles, namespace settings) in the same store as the documents."""
    name = f"{settings.qdrant_collection_prefix}_meta"
    if settings.qdrant_url:
        from knowledge_service.storage.remote import RemoteStore

        assert isinstance(store, RemoteStore)
        return ClientMetaStore(store.client, name)
    return EdgeMetaStore(settings.edge_path / name)


__all__ = ["ChunkPoint", "Hit", "Marker", "MetaStore", "QueryPlan", "Store", "open_meta_store", "open_store"]
