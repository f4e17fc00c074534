"""HTTP routes for profiles, namespace settings and evaluations (they mirror the gRPC RPCs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Path, Request
from pydantic import BaseModel

from knowledge_service.core import limits as L
from knowledge_service.doors.http.routing import Routes
from knowledge_service.doors.http.state import knowledge_of
from knowledge_service.pipelines.evaluation.comparison import Comparison
from knowledge_service.schemas.common import parse
from knowledge_service.schemas.evaluations import EvaluationRequest
from knowledge_service.schemas.profiles import (
    NamespaceRef,
    NamespaceSettings,
    ProfileOut,
    ProfileRef,
    PutProfileRequest,
    RollbackRequest,
)

NamePath = Annotated[str, Path(pattern=L.NAMESPACE_PATTERN, description="Profile name.")]
NamespacePath = Annotated[str, Path(pattern=L.NAMESPACE_PATTERN, description="Knowledge base.")]


class PutProfileBody(PutProfileRequest):
    name: str | None = None  # type: ignore[assignment]  # from the path


class NamespaceSettingsBody(NamespaceSettings):
    namespace: str | None = None  # type: ignore[assignment]  # from the path


class ProfileList(BaseModel):
    profiles: list[ProfileOut]


class VersionList(BaseModel):
    versions: list[ProfileOut]


routes = Routes()  # Profiles, namespace settings and evaluations (on the app itself, so the guard sees them).


@routes.route("GET", "/v1/profiles", name="ListProfiles")
async def list_profiles(request: Request) -> ProfileList:
    """Every profile at its active version."""
    return ProfileList(profiles=knowledge_of(request).profiles.list())


@routes.route("GET", "/v1/profiles/{name}", name="GetProfile")
async def get_profile(name: NamePath, request: Request) -> ProfileOut:
    """A profile at its active version."""
    return knowledge_of(request).profiles.get(parse(ProfileRef, name=name))


@routes.route("PUT", "/v1/profiles/{name}", name="PutProfile")
async def put_profile(name: NamePath, body: PutProfileBody, request: Request) -> ProfileOut:
    """Create version n+1 and make it active (409: stale expected_version; 412: gate failed)."""
    return await knowledge_of(request).profiles.put(body.model_copy(update={"name": name}))


@routes.route("GET", "/v1/profiles/{name}/versions", name="ListProfileVersions")
async def profile_versions(name: NamePath, request: Request) -> VersionList:
    """Every version of a profile, oldest first."""
    return VersionList(versions=await knowledge_of(request).profiles.versions(parse(ProfileRef, name=name)))


@routes.route("POST", "/v1/profiles/{name}/rollback", name="RollbackProfile")
async def rollback_profile(name: NamePath, body: RollbackRequest, request: Request) -> ProfileOut:
    """Make an earlier version's settings active again, as a new version."""
    return await knowledge_of(request).profiles.rollback(body.model_copy(update={"name": name}))


@routes.route("GET", "/v1/namespaces/{namespace}/settings", name="GetNamespaceSettings")
async def get_namespace_settings(namespace: NamespacePath, request: Request) -> NamespaceSettings:
    """A namespace's settings (its default profile)."""
    return knowledge_of(request).profiles.namespace_settings(parse(NamespaceRef, namespace=namespace))


@routes.route("PUT", "/v1/namespaces/{namespace}/settings", name="SetNamespaceSettings")
async def put_namespace_settings(
    namespace: NamespacePath, body: NamespaceSettingsBody, request: Request
) -> NamespaceSettings:
    """Set a namespace's default profile."""
    settings = parse(NamespaceSettings, namespace=namespace, default_profile=body.default_profile)
    return await knowledge_of(request).profiles.set_namespace_settings(settings)


@routes.route("POST", "/v1/evaluations", name="Evaluate")
async def evaluate(body: EvaluationRequest, request: Request) -> Comparison:
    """Run a labelled query set against one or two profiles on a namespace and compare them."""
    knowledge = knowledge_of(request)
    knowledge.keys.check_namespace(request.state.api_key, body.namespace)  # named in the body
    return await knowledge.evaluations.evaluate(body)


def add_profile_routes(app: FastAPI) -> None:
    routes.install(app)


__all__ = ["add_profile_routes"]
