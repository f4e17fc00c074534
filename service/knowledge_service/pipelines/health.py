"""Readiness: each component's state as one word, for ``/readyz`` and the gRPC health service."""

from __future__ import annotations

import logging

from knowledge_service.ops.metrics import Metrics
from knowledge_service.storage.cache import CacheUnavailable, ResultCache
from knowledge_service.storage.runner import AsyncStore

log = logging.getLogger(__name__)


class Health:
    def __init__(self, store: AsyncStore, cache: ResultCache, metrics: Metrics, *, reranker: bool) -> None:
        self._store = store
        self._cache = cache
        self._metrics = metrics
        self._reranker = reranker

    async def readiness(self) -> dict[str, str]:
        """``ok``, ``down`` or ``not_configured`` per component, never an error text, host or port
        (those go to the log). The models are loaded before the service opens its doors, so
        ``model`` is ``ok`` whenever this answers; the service is ready when the store answers."""
        state = {
            "model": "ok",
            "store": "ok",
            "cache": "ok",
            "reranker": "ok" if self._reranker else "not_configured",
        }
        try:
            await self._store.ping()
        except Exception as exc:
            log.warning("readiness: store down: %r", exc)
            state["store"] = "down"
        try:
            await self._cache.ping()
        except CacheUnavailable as exc:
            log.warning("readiness: cache down: %s", exc)
            state["cache"] = "down"
        for component in ("model", "store", "cache"):
            self._metrics.up.labels(component).set(1 if state[component] == "ok" else 0)
        return state
