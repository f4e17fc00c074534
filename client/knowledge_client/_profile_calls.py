"""Profile and namespace-settings calls, mixed into :class:`KnowledgeClient` and its async twin.

A profile is a named, versioned set of retrieval settings; every change writes version n+1 and
makes it active, and a namespace names the profile its searches use by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from . import _requests as rq
from ._models import NamespaceSettings, Profile, RequireEval

R = TypeVar("R")


class ProfileCalls:
    """Blocking profile calls (the client supplies ``_run``)."""

    def _run(self, call: rq.Call[R], timeout: float | None) -> R:
        raise NotImplementedError

    def list_profiles(self, *, timeout: float | None = None) -> list[Profile]:
        """Every profile at its active version.

        Args:
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            The profiles.
        """
        return self._run(rq.list_profiles(), timeout)

    def get_profile(self, name: str, *, timeout: float | None = None) -> Profile:
        """A profile at its active version; :class:`~knowledge_client.NotFound` if unknown.

        Args:
            name: The profile's name.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            The profile.
        """
        return self._run(rq.get_profile(name), timeout)

    def put_profile(
        self,
        name: str,
        settings: rq.SettingsLike | None = None,
        *,
        expected_version: int | None = None,
        require_eval: RequireEval | Mapping[str, Any] | None = None,
        note: str | None = None,
        timeout: float | None = None,
    ) -> Profile:
        """Create the profile's next version and make it active. Never retried.

        Args:
            name: The profile's name (created if new).
            settings: Retrieval settings; unset fields take the service's defaults.
            expected_version: Fail with :class:`~knowledge_client.Conflict` unless this is the
                active version (optimistic concurrency).
            require_eval: Refuse the change (:class:`~knowledge_client.PreconditionFailed`) if it
                does worse than the active version on this evaluation.
            note: Why the change was made.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            The new version.
        """
        return self._run(rq.put_profile(name, settings, expected_version, require_eval, note), timeout)

    def profile_versions(self, name: str, *, timeout: float | None = None) -> list[Profile]:
        """Every version of a profile, oldest first.

        Args:
            name: The profile's name.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            The versions.
        """
        return self._run(rq.profile_versions(name), timeout)

    def rollback_profile(self, name: str, version: int, *, timeout: float | None = None) -> Profile:
        """Make an earlier version's settings active again, as a new version. Never retried.

        Args:
            name: The profile's name.
            version: The version whose settings come back.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            The new version.
        """
        return self._run(rq.rollback_profile(name, version), timeout)

    def get_namespace_settings(self, namespace: str, *, timeout: float | None = None) -> NamespaceSettings:
        """A namespace's settings (its default profile).

        Args:
            namespace: The knowledge base.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            The settings.
        """
        return self._run(rq.get_namespace_settings(namespace), timeout)

    def set_namespace_settings(
        self, namespace: str, default_profile: str, *, timeout: float | None = None
    ) -> NamespaceSettings:
        """Set the profile a namespace's searches use when they name none.

        Args:
            namespace: The knowledge base.
            default_profile: An existing profile's name.
            timeout: This call's deadline in seconds (default: the client's).

        Returns:
            The settings now in force.
        """
        return self._run(rq.set_namespace_settings(namespace, default_profile), timeout)


class AsyncProfileCalls:
    """The same calls as :class:`ProfileCalls`, awaited (the client supplies an async ``_run``)."""

    async def _run(self, call: rq.Call[R], timeout: float | None) -> R:
        raise NotImplementedError

    async def list_profiles(self, *, timeout: float | None = None) -> list[Profile]:
        """Every profile at its active version (see :meth:`KnowledgeClient.list_profiles`)."""
        return await self._run(rq.list_profiles(), timeout)

    async def get_profile(self, name: str, *, timeout: float | None = None) -> Profile:
        """A profile at its active version (see :meth:`KnowledgeClient.get_profile`)."""
        return await self._run(rq.get_profile(name), timeout)

    async def put_profile(
        self,
        name: str,
        settings: rq.SettingsLike | None = None,
        *,
        expected_version: int | None = None,
        require_eval: RequireEval | Mapping[str, Any] | None = None,
        note: str | None = None,
        timeout: float | None = None,
    ) -> Profile:
        """Create the profile's next version (see :meth:`KnowledgeClient.put_profile`)."""
        return await self._run(rq.put_profile(name, settings, expected_version, require_eval, note), timeout)

    async def profile_versions(self, name: str, *, timeout: float | None = None) -> list[Profile]:
        """Every version of a profile, oldest first (see :meth:`KnowledgeClient.profile_versions`)."""
        return await self._run(rq.profile_versions(name), timeout)

    async def rollback_profile(self, name: str, version: int, *, timeout: float | None = None) -> Profile:
        """Reactivate an earlier version's settings (see :meth:`KnowledgeClient.rollback_profile`)."""
        return await self._run(rq.rollback_profile(name, version), timeout)

    async def get_namespace_settings(
        self, namespace: str, *, timeout: float | None = None
    ) -> NamespaceSettings:
        """A namespace's settings (see :meth:`KnowledgeClient.get_namespace_settings`)."""
        return await self._run(rq.get_namespace_settings(namespace), timeout)

    async def set_namespace_settings(
        self, namespace: str, default_profile: str, *, timeout: float | None = None
    ) -> NamespaceSettings:
        """Set a namespace's default profile (see :meth:`KnowledgeClient.set_namespace_settings`)."""
        return await self._run(rq.set_namespace_settings(namespace, default_profile), timeout)
