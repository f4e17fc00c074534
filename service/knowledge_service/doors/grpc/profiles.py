"""The profile, namespace-settings and evaluation RPCs of knowledge.v1.KnowledgeService (a servicer mixin)."""

from __future__ import annotations

from typing import Any

from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_service.doors.grpc.convert import to_message, to_model
from knowledge_service.doors.grpc.guard import guarded
from knowledge_service.pipelines.evaluation.comparison import Comparison
from knowledge_service.schemas.evaluations import EvaluationRequest
from knowledge_service.schemas.profiles import (
    NamespaceRef,
    NamespaceSettings,
    ProfileRef,
    PutProfileRequest,
    RollbackRequest,
)


class ProfileRpcs:
    """Profiles: list, get, put (new version), versions, rollback; namespace default profile;
    evaluations."""

    _core: Any

    @guarded
    async def ListProfiles(self, request: pb.ListProfilesRequest, context: Any) -> pb.ListProfilesResponse:
        """Every profile at its active version."""
        return to_message(pb.ListProfilesResponse, {"profiles": self._core.profiles.list()})

    @guarded
    async def GetProfile(self, request: pb.GetProfileRequest, context: Any) -> pb.Profile:
        """A profile at its active version."""
        return to_message(pb.Profile, self._core.profiles.get(to_model(ProfileRef, request)))

    @guarded
    async def PutProfile(self, request: pb.PutProfileRequest, context: Any) -> pb.Profile:
        """Create version n+1 and make it active."""
        return to_message(pb.Profile, await self._core.profiles.put(to_model(PutProfileRequest, request)))

    @guarded
    async def ListProfileVersions(
        self, request: pb.ListProfileVersionsRequest, context: Any
    ) -> pb.ListProfileVersionsResponse:
        """Every version of a profile, oldest first."""
        versions = await self._core.profiles.versions(to_model(ProfileRef, request))
        return to_message(pb.ListProfileVersionsResponse, {"versions": versions})

    @guarded
    async def RollbackProfile(self, request: pb.RollbackProfileRequest, context: Any) -> pb.Profile:
        """Make an earlier version's settings active again, as a new version."""
        return to_message(pb.Profile, await self._core.profiles.rollback(to_model(RollbackRequest, request)))

    @guarded
    async def GetNamespaceSettings(
        self, request: pb.GetNamespaceSettingsRequest, context: Any
    ) -> pb.NamespaceSettings:
        """A namespace's settings (its default profile)."""
        out = self._core.profiles.namespace_settings(to_model(NamespaceRef, request))
        return to_message(pb.NamespaceSettings, out)

    @guarded
    async def SetNamespaceSettings(self, request: pb.NamespaceSettings, context: Any) -> pb.NamespaceSettings:
        """Set a namespace's default profile."""
        out = await self._core.profiles.set_namespace_settings(to_model(NamespaceSettings, request))
        return to_message(pb.NamespaceSettings, out)

    @guarded
    async def Evaluate(self, request: pb.EvaluateRequest, context: Any) -> pb.Comparison:
        """Run a labelled query set against one or two profiles on a namespace and compare them."""
        result: Comparison = await self._core.evaluations.evaluate(to_model(EvaluationRequest, request))
        return to_message(pb.Comparison, result)
