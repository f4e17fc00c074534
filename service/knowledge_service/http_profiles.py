"""HTTP routes for profiles, namespace settings and evaluations (they mirror the gRPC RPCs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, create_model

from . import limits as L
from .auth import ALL
from .comparison import Comparison
from .evaluations import EvaluationRequest
from .http_auth import allow
from .models import NamespaceSettings, PutProfileRequest, RollbackRequest, parse
from .profiles import ProfileOut

NamePath = Annotated[str, Path(pattern=L.NAMESPACE_PATTERN, description="Profile name.")]
NamespacePath = Annotated[str, Path(pattern=L.NAMESPACE_PATTERN, description="Knowledge base.")]
PutBody = create_model("PutProfileBody", __base__=PutProfileRequest, name=(str | None, None))
NamespaceBody = create_model(
    "NamespaceSettingsBody", __base__=NamespaceSettings, namespace=(str | None, None)
)


class ProfileList(BaseModel):
    profiles: list[ProfileOut]


class VersionList(BaseModel):
    versions: list[ProfileOut]


def profile_routes() -> APIRouter:
    router = APIRouter()

    @router.get("/v1/profiles", response_model=ProfileList)
    async def list_profiles(request: Request):
        """Every profile at its active version."""
        return ProfileList(profiles=allow(request, "search", None).profiles.list())

    @router.get("/v1/profiles/{name}", response_model=ProfileOut)
    async def get_profile(name: NamePath, request: Request):
        """A profile at its active version."""
        return allow(request, "search", None).profiles.get(name)

    @router.put("/v1/profiles/{name}", response_model=ProfileOut)
    async def put_profile(name: NamePath, body: PutBody, request: Request):  # type: ignore[valid-type]
        """Create version n+1 and make it active (409: stale expected_version; 412: gate failed)."""
        return await allow(request, "admin", ALL).put_profile(body.model_copy(update={"name": name}))

    @router.get("/v1/profiles/{name}/versions", response_model=VersionList)
    async def profile_versions(name: NamePath, request: Request):
        """Every version of a profile, oldest first."""
        return VersionList(versions=await allow(request, "search", None).profiles.versions(name))

    @router.post("/v1/profiles/{name}/rollback", response_model=ProfileOut)
    async def rollback_profile(name: NamePath, body: RollbackRequest, request: Request):
        """Make an earlier version's settings active again, as a new version."""
        return await allow(request, "admin", ALL).profiles.rollback(name, body.version)

    @router.get("/v1/namespaces/{namespace}/settings", response_model=NamespaceSettings)
    async def get_namespace_settings(namespace: NamespacePath, request: Request):
        """A namespace's settings (its default profile)."""
        core = allow(request, "search", namespace)
        return NamespaceSettings(
            namespace=namespace, default_profile=core.profiles.namespace_default(namespace)
        )

    @router.put("/v1/namespaces/{namespace}/settings", response_model=NamespaceSettings)
    async def put_namespace_settings(namespace: NamespacePath, body: NamespaceBody, request: Request):  # type: ignore[valid-type]
        """Set a namespace's default profile."""
        settings = parse(NamespaceSettings, namespace=namespace, default_profile=body.default_profile)
        await allow(request, "admin", namespace).profiles.set_namespace_default(
            namespace, settings.default_profile
        )
        return settings

    @router.post("/v1/evaluations", response_model=Comparison)
    async def evaluate(body: EvaluationRequest, request: Request):
        """Run a labelled query set against one or two profiles on a namespace and compare them."""
        return await allow(request, "admin", body.namespace).evaluate(body)

    return router


__all__ = ["profile_routes"]
