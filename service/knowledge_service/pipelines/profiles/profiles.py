"""The profile operations both front doors call; changes with ``require_eval`` pass the gate first."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from typing import Protocol

from knowledge_service.core.errors import InvalidArgument
from knowledge_service.pipelines.profiles.registry import ProfileRegistry
from knowledge_service.schemas.profiles import (
    NamespaceRef,
    NamespaceSettings,
    ProfileOut,
    ProfileRef,
    PutProfileRequest,
    RequireEval,
    RollbackRequest,
)
from knowledge_service.schemas.search import RetrievalSettings


class Gatekeeper(Protocol):
    """What runs the require_eval gate (pipelines.evaluation.Evaluations)."""

    def gate_check(self, name: str, rule: RequireEval) -> Callable[[RetrievalSettings], Awaitable[None]]: ...


class Profiles:
    def __init__(self, registry: ProfileRegistry, gatekeeper: Gatekeeper) -> None:
        self._registry = registry
        self._gatekeeper = gatekeeper

    def list(self) -> builtins.list[ProfileOut]:
        """Every profile at its active version."""
        return self._registry.list()

    def get(self, ref: ProfileRef) -> ProfileOut:
        """A profile at its active version."""
        return self._registry.get(ref.name)

    async def versions(self, ref: ProfileRef) -> builtins.list[ProfileOut]:
        """Every version of a profile, oldest first."""
        return await self._registry.versions(ref.name)

    async def put(self, req: PutProfileRequest) -> ProfileOut:
        """New version of a profile; with ``require_eval``, only if it passes the gate."""
        check = self._gatekeeper.gate_check(req.name, req.require_eval) if req.require_eval else None
        return await self._registry.put(req.name, req.settings, req.expected_version, req.note, check)

    async def rollback(self, req: RollbackRequest) -> ProfileOut:
        """Make an earlier version's settings active again, as a new version."""
        if req.name is None:  # HTTP takes it from the path; a gRPC request may leave it empty
            raise InvalidArgument("name: say which profile to roll back", field="name")
        return await self._registry.rollback(req.name, req.version)

    def namespace_settings(self, ref: NamespaceRef) -> NamespaceSettings:
        """A namespace's settings (its default profile)."""
        return NamespaceSettings(
            namespace=ref.namespace, default_profile=self._registry.namespace_default(ref.namespace)
        )

    async def set_namespace_settings(self, req: NamespaceSettings) -> NamespaceSettings:
        """Set a namespace's default profile (it must exist)."""
        await self._registry.set_namespace_default(req.namespace, req.default_profile)
        return req
