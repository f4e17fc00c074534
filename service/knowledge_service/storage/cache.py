"""The search-result cache: Redis when configured, else an in-process TTL cache.

Keys hash every input that changes a result, including the namespace's index version, so an
ingest or delete makes older entries unreachable at once (they age out by TTL; no scans). A cache
that fails or is slow raises CacheUnavailable; the core then serves uncached and says so.

In front of either cache, :class:`DecodedAnswers` keeps the most recent answers decoded, under
the same keys and TTL: a repeated search skips the cache's round trip and the JSON decode. It
holds only answers the cache was given or gave back, under keys that carry the index version, so
it is never staler than the cache (it may still answer after the cache has evicted one).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any, Generic, Protocol, TypeVar

from cachetools import TTLCache

from knowledge_service.core.config import Settings

log = logging.getLogger(__name__)
KEY_PREFIX = "knowledge:search:v1:"
A = TypeVar("A")


class CacheUnavailable(Exception):
    """The cache could not answer in time."""


def cache_key(**parts: Any) -> str:
    """A stable key over keyword parts (JSON with sorted keys, then SHA-256)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return KEY_PREFIX + hashlib.sha256(blob.encode()).hexdigest()


class DecodedAnswers(Generic[A]):
    """The last ``entries`` answers put or read, decoded (the searcher's; ``entries`` 0: none)."""

    def __init__(self, entries: int, ttl_s: int) -> None:
        self._data: TTLCache[str, A] | None = TTLCache(maxsize=entries, ttl=ttl_s) if entries else None

    def get(self, key: str) -> A | None:
        return None if self._data is None else self._data.get(key)

    def put(self, key: str, answer: A) -> None:
        if self._data is not None:
            self._data[key] = answer


class ResultCache(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class MemoryCache:
    """An in-process TTL cache bounded in bytes (the embedded default)."""

    name = "memory"

    def __init__(self, max_bytes: int, ttl_s: int) -> None:
        # Bounded in bytes of the stored answers (cachetools counts each value's len()).
        self._data: TTLCache[str, bytes] = TTLCache(maxsize=max(max_bytes, 1), ttl=ttl_s, getsizeof=len)

    async def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    async def set(self, key: str, value: bytes) -> None:
        if len(value) <= self._data.maxsize:
            self._data[key] = value

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()


class RedisCache:
    """Redis with short timeouts: a slow or down Redis must never slow or fail a search."""

    name = "redis"

    def __init__(self, url: str, ttl_s: int, timeout_s: float) -> None:
        import redis.asyncio as redis

        self._ttl = ttl_s
        self._timeout = timeout_s
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=None
        )

    async def _call(self, coro: Any) -> Any:
        try:
            return await asyncio.wait_for(coro, timeout=self._timeout * 2)
        except Exception as exc:
            raise CacheUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        return await self._call(self._redis.get(key))

    async def set(self, key: str, value: bytes) -> None:
        await self._call(self._redis.set(key, value, ex=self._ttl))

    async def ping(self) -> None:
        await self._call(self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()


def open_cache(settings: Settings) -> ResultCache:
    if settings.redis_url:
        return RedisCache(settings.redis_url, settings.cache_ttl_s, settings.cache_timeout_s)
    return MemoryCache(settings.cache_max_bytes, settings.cache_ttl_s)
