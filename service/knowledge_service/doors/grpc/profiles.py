"""The profile and namespace-settings RPCs of knowledge.v1.KnowledgeService (a servicer mixin)."""

from __future__ import annotations

from typing import Any

from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_service.doors.grpc import convert as convert
from knowledge_service.doors.grpc.guard import guarded
from knowledge_service.schemas.profiles import (
    NamespaceRef,
    NamespaceSettings,
    ProfileRef,
    PutProfileRequest,
    RollbackRequest,
)


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
        return convert.profile_message(
            self._core.profiles.get(ProfileRef.model_validate({"name": request.name}))
        )

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
        return convert.profile_message(await self._core.profiles.put(PutProfileRequest.model_validate(data)))

    @guarded
    async def ListProfileVersions(
        self, request: pb.ListProfileVersionsRequest, context: Any
    ) -> pb.ListProfileVersionsResponse:
        """Every version of a profile, oldest first."""
        versions = await self._core.profiles.versions(ProfileRef.model_validate({"name": request.name}))
        return pb.ListProfileVersionsResponse(versions=[convert.profile_message(p) for p in versions])

    @guarded
    async def RollbackProfile(self, request: pb.RollbackProfileRequest, context: Any) -> pb.Profile:
        """Make an earlier version's settings active again, as a new version."""
        body = RollbackRequest.model_validate({"name": request.name, "version": request.version})
        return convert.profile_message(await self._core.profiles.rollback(body))

    @guarded
    async def GetNamespaceSettings(
        self, request: pb.GetNamespaceSettingsRequest, context: Any
    ) -> pb.NamespaceSettings:
        """A namespace's settings (its default profile)."""
        ref = NamespaceRef.model_validate({"namespace": request.namespace})
        out = self._core.profiles.namespace_settings(ref)
        return pb.NamespaceSettings(namespace=out.namespace, default_profile=out.default_profile)

    @guarded
    async def SetNamespaceSettings(self, request: pb.NamespaceSettings, context: Any) -> pb.NamespaceSettings:
        """Set a namespace's default profile."""
        body = NamespaceSettings.model_validate(
            {"namespace": request.namespace, "default_profile": request.default_profile}
        )
        await self._core.profiles.set_namespace_settings(body)
        return request
