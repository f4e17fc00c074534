"""Translate the profile and namespace-settings RPCs' bodies to and from knowledge.v1 messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._convert import Body, enum_name, settings_fields
from .proto.knowledge.v1 import knowledge_pb2 as pb

_SETTINGS_SCALARS = ("top_k", "candidates", "rerank", "rerank_depth", "score_threshold", "stitch")


def settings_message(settings: Body) -> pb.RetrievalSettings:
    msg = pb.RetrievalSettings()
    for name in _SETTINGS_SCALARS:
        if settings.get(name) is not None:
            setattr(msg, name, settings[name])
    return settings_fields(settings, msg)


def settings_dict(msg: pb.RetrievalSettings) -> Body:
    """Every field the message sets (the service fills them all for a stored profile)."""
    data: Body = {name: getattr(msg, name) for name in _SETTINGS_SCALARS if msg.HasField(name)}
    if (mode := enum_name(pb.SearchMode, "SEARCH_MODE_", msg.mode, None)) is not None:
        data["mode"] = mode
    if msg.HasField("fusion"):
        data["fusion"] = {
            "method": enum_name(pb.FusionMethod, "FUSION_METHOD_", msg.fusion.method, "rrf"),
            "k": msg.fusion.k if msg.fusion.HasField("k") else None,
            "weights": list(msg.fusion.weights) or None,
        }
    return data


def profile_response(msg: pb.Profile) -> Body:
    return {
        "name": msg.name,
        "version": msg.version,
        "settings": settings_dict(msg.settings),
        "created_at": msg.created_at,
        "note": msg.note if msg.HasField("note") else None,
    }


def put_request(body: Body) -> pb.PutProfileRequest:
    msg = pb.PutProfileRequest(name=body["name"], settings=settings_message(body.get("settings") or {}))
    if body.get("expected_version") is not None:
        msg.expected_version = body["expected_version"]
    if body.get("note") is not None:
        msg.note = body["note"]
    if (rule := body.get("require_eval")) is not None:
        msg.require_eval.CopyFrom(pb.RequireEval(**rule))
    return msg


CODECS: dict[str, tuple[Callable[[Body], Any], Callable[[Any], Body]]] = {
    "ListProfiles": (
        lambda body: pb.ListProfilesRequest(),
        lambda msg: {"profiles": [profile_response(p) for p in msg.profiles]},
    ),
    "GetProfile": (lambda body: pb.GetProfileRequest(name=body["name"]), profile_response),
    "PutProfile": (put_request, profile_response),
    "ListProfileVersions": (
        lambda body: pb.ListProfileVersionsRequest(name=body["name"]),
        lambda msg: {"versions": [profile_response(p) for p in msg.versions]},
    ),
    "RollbackProfile": (
        lambda body: pb.RollbackProfileRequest(name=body["name"], version=body["version"]),
        profile_response,
    ),
    "GetNamespaceSettings": (
        lambda body: pb.GetNamespaceSettingsRequest(namespace=body["namespace"]),
        lambda msg: {"namespace": msg.namespace, "default_profile": msg.default_profile},
    ),
    "SetNamespaceSettings": (
        lambda body: pb.NamespaceSettings(
            namespace=body["namespace"], default_profile=body["default_profile"]
        ),
        lambda msg: {"namespace": msg.namespace, "default_profile": msg.default_profile},
    ),
}
