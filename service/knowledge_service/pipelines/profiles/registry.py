"""Profiles: named, versioned retrieval settings, changed at runtime and seen by every replica.

Records (in the store's meta collection, beside the documents):

- ``profile/{name}/v{n}`` (kind ``profile_version``): version n's settings, never changed again;
- ``profile/{name}`` (kind ``profile_head``): the active version and a copy of its settings;
- ``ns/{namespace}`` (kind ``ns_settings``): a namespace's default profile;
- ``stamp`` (kind ``stamp``): bumped after every change.

Writes go version record -> head (the switch) -> stamp. Each replica keeps the heads in memory
(searches never read the store for them), polls the stamp every ``profile_poll_s`` and reloads when
it moved; with Redis configured, a change is also published so replicas reload at once. Version
numbers only grow (a rollback writes a new version), so a cache key holding one never goes stale.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from knowledge_service.core.errors import Conflict, NotFound, from_validation_error
from knowledge_service.schemas.profiles import ProfileOut
from knowledge_service.schemas.search import RetrievalSettings
from knowledge_service.storage.runner import AsyncMeta

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT = "default"
CHANNEL = "knowledge:profiles"
CAS_ATTEMPTS = 50


class ProfileRegistry:
    """Profiles for one replica: an in-memory view of the meta store, kept fresh."""

    def __init__(
        self,
        meta: AsyncMeta,
        *,
        poll_s: float,
        redis_url: str | None = None,
    ) -> None:
        self._meta = meta
        self._poll_s = poll_s
        self._redis_url = redis_url
        self._heads: dict[str, ProfileOut] = {}
        self._ns_default: dict[str, str] = {}
        self._stamp = -1
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.refresh(force=True)
        if DEFAULT not in self._heads:
            async with self._lock:
                try:
                    await self._write_version(
                        DEFAULT, RetrievalSettings(), None, "built-in defaults", strict=True
                    )
                except Conflict:  # another replica created it first
                    await self.refresh(force=True)
        self._tasks.append(asyncio.create_task(self._poll_forever()))
        if self._redis_url:
            self._tasks.append(asyncio.create_task(self._listen_forever()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ reads (no I/O)

    def resolve(self, namespace: str, name: str | None) -> ProfileOut:
        """The profile a search uses: the one named, else the namespace's default, else default."""
        chosen = name or self._ns_default.get(namespace) or DEFAULT
        head = self._heads.get(chosen)
        if head is None:
            raise NotFound(
                f"profile {chosen!r} does not exist; known: {sorted(self._heads)}", field="profile"
            )
        return head

    def list(self) -> builtins.list[ProfileOut]:
        return [self._heads[n] for n in sorted(self._heads)]

    def get(self, name: str) -> ProfileOut:
        return self.resolve("", name)

    def find(self, name: str) -> ProfileOut | None:
        return self._heads.get(name)

    def namespace_default(self, namespace: str) -> str:
        return self._ns_default.get(namespace, DEFAULT)

    async def versions(self, name: str) -> builtins.list[ProfileOut]:
        """Every stored version of a profile, oldest first (read from the store, not this replica's view)."""
        self.get(name)  # NotFound for an unknown profile
        records = await self._meta.scan("profile_version")
        return sorted((_profile(r) for r in records if r.get("name") == name), key=lambda p: p.version)

    # ------------------------------------------------------------------ writes

    async def put(
        self,
        name: str,
        settings: dict[str, Any],
        expected_version: int | None = None,
        note: str | None = None,
        check: Callable[[RetrievalSettings], Awaitable[None]] | None = None,
    ) -> ProfileOut:
        """Create version n+1 of ``name`` (n = 0 for a new profile) and make it active.

        ``check`` may veto the new settings (the evaluation gate) by raising. It runs without any
        lock; if the profile changed meanwhile, the write fails with Conflict instead of landing on
        top of a version the gate never saw.
        """
        try:
            new = RetrievalSettings.model_validate(settings)
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        await self.refresh(force=True)
        current = self._heads.get(name)
        if expected_version is not None and (current.version if current else 0) != expected_version:
            raise Conflict(
                f"profile {name!r} is at version {current.version if current else 0}, not "
                f"{expected_version}; re-read it and retry",
                field="expected_version",
            )
        if check is not None:  # may take minutes: no lock held; the write below is a compare-and-set
            await check(new)
        async with self._lock:
            # With a gate, the new version must follow the one it was compared with.
            strict = expected_version is not None or check is not None
            return await self._write_version(name, new, current, note, strict=strict)

    async def rollback(self, name: str, version: int) -> ProfileOut:
        """Make version ``version``'s settings active again, as a new version."""
        records = await self._meta.get([f"profile/{name}/v{version}"])
        if not records:
            self.get(name)  # NotFound for an unknown profile
            raise NotFound(f"profile {name!r} has no version {version}", field="version")
        old = _profile(next(iter(records.values())))
        return await self.put(name, old.settings.model_dump(), note=f"rollback to version {version}")

    async def set_namespace_default(self, namespace: str, name: str) -> None:
        self.get(name)  # must exist
        async with self._lock:
            await self._meta.put(
                {f"ns/{namespace}": {"kind": "ns_settings", "namespace": namespace, "default_profile": name}},
            )
            self._ns_default[namespace] = name
            await self._bump()

    async def _write_version(
        self,
        name: str,
        settings: RetrievalSettings,
        current: ProfileOut | None,
        note: str | None,
        *,
        strict: bool,
    ) -> ProfileOut:
        """Claim version n+1 in the store, then move the head forward (never back).

        The version record is written insert-only, so across replicas exactly one writer gets each
        version number: a loser gets Conflict when it asked for a specific version (``strict``),
        else takes the next number.
        """
        token = uuid.uuid4().hex
        version = (current.version if current else 0) + 1
        while True:
            out = ProfileOut(name=name, version=version, settings=settings, created_at=time.time(), note=note)
            record = {"kind": "profile_version", **out.model_dump(mode="json"), "writer": token}
            stored = await self._meta.insert_new(f"profile/{name}/v{version}", record)
            if stored.get("writer") == token:
                break
            # Someone else holds this version: make sure the head reaches it (a writer that died
            # between its two writes would otherwise leave the head behind for good).
            await self._meta.put_newer(f"profile/{name}", {**stored, "kind": "profile_head"}, "version")
            held = _profile(stored)
            if name not in self._heads or self._heads[name].version < held.version:
                self._heads[name] = held
            if strict:
                await self._bump()  # other replicas see the head that caught up
                raise Conflict(
                    f"profile {name!r} changed concurrently (version {version} exists); re-read it and retry",
                    field="expected_version",
                )
            version += 1
        await self._meta.put_newer(f"profile/{name}", {**record, "kind": "profile_head"}, "version")
        if name not in self._heads or self._heads[name].version < out.version:
            self._heads[name] = out
        await self._bump()
        return out

    async def _bump(self) -> None:
        """Advance the change stamp by one, with a compare-and-set: two changes racing on two
        replicas give two stamps, so no replica's view can match the stamp and miss a change.
        This replica's own view is not moved: its next poll reloads and sees both."""
        for _ in range(CAS_ATTEMPTS):
            stored = (await self._meta.get(["stamp"])).get("stamp")
            old = stored["value"] if stored else None
            token = uuid.uuid4().hex
            record = {"kind": "stamp", "value": (old or 0) + 1, "writer": token}
            await self._meta.put_if("stamp", record, "value", old)
            if (await self._meta.get(["stamp"])).get("stamp", {}).get("writer") == token:
                break
        else:
            log.warning("profile change stamp not advanced (contention); polling may take longer")
        if self._redis_url:
            await self._publish()

    # ------------------------------------------------------------------ freshness

    async def refresh(self, force: bool = False) -> bool:
        """Reload from the store when the stamp moved (or always with ``force``)."""
        stamp = (await self._meta.get(["stamp"])).get("stamp", {}).get("value", 0)
        if not force and stamp == self._stamp:
            return False
        heads = await self._meta.scan("profile_head")
        namespaces = await self._meta.scan("ns_settings")
        self._heads = {h["name"]: _profile(h) for h in heads}
        self._ns_default = {n["namespace"]: n["default_profile"] for n in namespaces}
        self._stamp = stamp
        return True

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.refresh()
            except Exception as exc:  # keep serving the last known profiles
                log.warning("profile refresh failed: %r", exc)

    async def _publish(self) -> None:
        import redis.asyncio as redis

        try:
            async with redis.Redis.from_url(self._redis_url, socket_timeout=0.5) as r:  # type: ignore[arg-type]
                await r.publish(CHANNEL, "changed")
        except Exception as exc:  # polling still delivers the change
            log.warning("profile change not published: %r", exc)

    async def _listen_forever(self) -> None:
        import redis.asyncio as redis

        while True:
            try:
                async with redis.Redis.from_url(self._redis_url) as r:  # type: ignore[arg-type]
                    async with r.pubsub() as sub:
                        await sub.subscribe(CHANNEL)
                        async for message in sub.listen():
                            if message.get("type") == "message":
                                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("profile subscription lost (%r); polling covers it, retrying", exc)
                await asyncio.sleep(max(self._poll_s, 1.0))


def _profile(record: dict[str, Any]) -> ProfileOut:
    return ProfileOut.model_validate({k: record.get(k) for k in ProfileOut.model_fields})
