"""The profile and namespace-settings RPCs of knowledge.v1.KnowledgeService (a servicer mixin)."""

from __future__ import annotations

from typing import Any

from knowledge_client._proto.knowledge.v1 import knowledge_pb2 as pb

from . import grpc_convert as convert
from .grpc_guard import guarded
from .models import DocumentRef, NamespaceSettings, PutProfileRequest, RollbackRequest
from .profiles import validate_name


class ProfileRpcs:
    """Profiles: list, get, put (new version), versions, rollback; namespace default profile."""

    _core: Any

    @guarded
    async def ListProfiles(self, request: pb.ListProfilesRequest, context: Any) -> pb.ListProfilesResponse:
        """Every profile at its active version."""
        return pb.ListProfilesResponse(
            profiles=[convert.profile_message(p) for p in self._core.profiles.list()]
        )

    @guarded
    async def GetProfile(self, request: pb.GetProfileRequest, context: Any) -> pb.Profile:
        """A profile at its active version."""
        return convert.profile_message(self._core.profiles.get(validate_name(request.name)))

    @guarded
    async def PutProfile(self, request: pb.PutProfileRequest, context: Any) -> pb.Profile:
        """Create version n+1 and make it active."""
        data: dict[str, Any] = {"name": request.name, "settings": convert.settings_dict(request.settings)}
        convert.optional(request, data, "expected_version", "note")
        if request.HasField("require_eval"):
            rule = request.require_eval
            data["require_eval"] = {
                "dataset": rule.dataset,
                "split": rule.split or "test",
                "namespace": rule.namespace,
                "min_delta": rule.min_delta,
            }
        return convert.profile_message(await self._core.put_profile(PutProfileRequest.model_validate(data)))

    @guarded
    async def ListProfileVersions(
        self, request: pb.ListProfileVersionsRequest, context: Any
    ) -> pb.ListProfileVersionsResponse:
        """Every version of a profile, oldest first."""
        versions = await self._core.profiles.versions(validate_name(request.name))
        return pb.ListProfileVersionsResponse(versions=[convert.profile_message(p) for p in versions])

    @guarded
    async def RollbackProfile(self, request: pb.RollbackProfileRequest, context: Any) -> pb.Profile:
        """Make an earlier version's settings active again, as a new version."""
        body = RollbackRequest.model_validate({"version": request.version})
        return convert.profile_message(
            await self._core.profiles.rollback(validate_name(request.name), body.version)
        )

    @guarded
    async def GetNamespaceSettings(
        self, request: pb.GetNamespaceSettingsRequest, context: Any
    ) -> pb.NamespaceSettings:
        """A namespace's settings (its default profile)."""
        ns = DocumentRef.model_validate({"namespace": request.namespace, "doc_id": "-"}).namespace
        return pb.NamespaceSettings(namespace=ns, default_profile=self._core.profiles.namespace_default(ns))

    @guarded
    async def SetNamespaceSettings(self, request: pb.NamespaceSettings, context: Any) -> pb.NamespaceSettings:
        """Set a namespace's default profile."""
        body = NamespaceSettings.model_validate(
            {"namespace": request.namespace, "default_profile": request.default_profile}
        )
        await self._core.profiles.set_namespace_default(body.namespace, body.default_profile)
        return request
