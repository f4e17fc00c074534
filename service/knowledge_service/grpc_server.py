"""The gRPC front door: translates knowledge.v1 messages to and from the models and calls the core.

Lifecycle::

    server, port = create_server(core, settings)   # built and bound, not started
    await start_server(server)                     # start, then health = SERVING
    ...
    await stop_server(server, settings.grpc_grace_s)  # health = NOT_SERVING, then graceful stop

Message translation lives in ``grpc_convert.py``.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import ValidationError

from knowledge_client._proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client._proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc

from . import grpc_convert as convert
from . import limits
from .auth import ALL, Role
from .errors import InvalidArgument, KnowledgeError, Overloaded, from_validation_error
from .logs import log_request
from .models import (
    CountRequest,
    DeleteRequest,
    DocumentRef,
    IngestResponse,
    IngestResult,
    NamespaceSettings,
    PutProfileRequest,
    RollbackRequest,
)
from .profiles import validate_name
from .tracing import grpc_interceptors

if TYPE_CHECKING:
    from .config import Settings
    from .core import KnowledgeCore

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["KnowledgeService"].full_name
_HEALTH: weakref.WeakKeyDictionary[grpc.aio.Server, health.aio.HealthServicer] = weakref.WeakKeyDictionary()

# ----------------------------------------------------------------------------- servicer

_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[Any]])


# The role each RPC needs, and the namespace it acts on: the request's own (NS), every namespace
# (ALL: shared profiles) or none (reading profiles). IngestStream checks each message's namespace.
NS = "request"
_ACCESS: dict[str, tuple[Role, str | None]] = {
    "Search": ("search", NS),
    "GetDocument": ("search", NS),
    "CountDocuments": ("search", NS),
    "Ingest": ("ingest", NS),
    "IngestStream": ("ingest", None),
    "DeleteDocuments": ("admin", NS),
    "ListProfiles": ("search", None),
    "GetProfile": ("search", None),
    "ListProfileVersions": ("search", None),
    "PutProfile": ("admin", ALL),
    "RollbackProfile": ("admin", ALL),
    "GetNamespaceSettings": ("search", NS),
    "SetNamespaceSettings": ("admin", NS),
}


def authorization(context: grpc.aio.ServicerContext) -> str | None:
    return dict(context.invocation_metadata() or ()).get("authorization")


def request_id(context: grpc.aio.ServicerContext) -> str:
    return dict(context.invocation_metadata() or ()).get("x-request-id") or uuid.uuid4().hex


def _guarded(handler: _Handler) -> _Handler:
    """The one error table for gRPC (domain errors keep their code, anything else is INTERNAL),
    after checking the caller's API key for the RPC's role and namespace."""
    role, scope = _ACCESS[handler.__name__]

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            try:
                namespace = request.namespace if scope == NS else scope
                self._core.keys.check(authorization(context), role, namespace)
                return await handler(self, request, context)
            except grpc.aio.AbortError:
                code = grpc.StatusCode.UNKNOWN
                raise
            except ValidationError as exc:
                err: KnowledgeError = from_validation_error(exc)
            except KnowledgeError as exc:
                err = exc
            except Exception:
                log.exception("gRPC %s failed", handler.__name__)
                err = KnowledgeError("internal error")
            code = err.grpc_code
            hint = (
                (("retry-after-ms", str(int(err.retry_after_s * 1000))),)
                if isinstance(err, Overloaded)
                else ()
            )
            await context.abort(code, err.message, trailing_metadata=hint)
        finally:
            elapsed = time.perf_counter() - started
            if (metrics := getattr(self._core, "metrics", None)) is not None:
                metrics.requests.labels("grpc", handler.__name__, code.name).inc()
                metrics.latency.labels("grpc", handler.__name__).observe(elapsed)
            log_request(
                transport="grpc",
                route=handler.__name__,
                status=code.name,
                latency_ms=round(elapsed * 1000, 2),
                request_id=request_id(context),
                namespace=getattr(request, "namespace", None) or None,
            )

    return wrapper  # type: ignore[return-value]


class KnowledgeServicer(pb_grpc.KnowledgeServiceServicer):
    """Implements knowledge.v1.KnowledgeService on top of a KnowledgeCore."""

    def __init__(self, core: KnowledgeCore) -> None:
        self._core = core

    @_guarded
    async def Search(self, request: pb.SearchRequest, context: Any) -> pb.SearchResponse:
        """Hybrid search over one namespace."""
        remaining = context.time_remaining()
        deadline = time.monotonic() + remaining if remaining is not None else None
        return convert.search_response(await self._core.search(convert.search_request(request), deadline))

    @_guarded
    async def Ingest(self, request: pb.IngestRequest, context: Any) -> pb.IngestResponse:
        """Ingest one batch of documents."""
        return convert.ingest_response(await self._core.ingest(convert.ingest_request(request)))

    @_guarded
    async def IngestStream(
        self, request_iterator: AsyncIterator[pb.IngestRequest], context: Any
    ) -> pb.IngestResponse:
        """Ingest each streamed batch as it arrives; answer with every outcome."""
        results: list[IngestResult] = []
        index_version, count = 0, 0
        async for message in request_iterator:
            self._core.keys.check(authorization(context), "ingest", message.namespace)
            try:
                resp = await self._core.ingest(convert.ingest_request(message))
            except ValidationError as exc:
                raise _in_message(from_validation_error(exc), count) from exc
            except KnowledgeError as exc:
                raise _in_message(exc, count) from exc
            results.extend(resp.results)
            index_version = resp.index_version
            count += 1
        if not count:
            raise InvalidArgument("IngestStream: send at least one IngestRequest")
        return convert.ingest_response(IngestResponse(results=results, index_version=index_version))

    @_guarded
    async def DeleteDocuments(
        self, request: pb.DeleteDocumentsRequest, context: Any
    ) -> pb.DeleteDocumentsResponse:
        """Delete documents by id and/or metadata filter."""
        data = {"namespace": request.namespace, "ids": list(request.ids)}
        resp = await self._core.delete(DeleteRequest.model_validate(convert.with_filter(request, data)))
        return pb.DeleteDocumentsResponse(deleted=resp.deleted, index_version=resp.index_version)

    @_guarded
    async def GetDocument(self, request: pb.GetDocumentRequest, context: Any) -> pb.GetDocumentResponse:
        """Return one stored document."""
        ref = DocumentRef.model_validate({"namespace": request.namespace, "doc_id": request.doc_id})
        doc = await self._core.get_document(ref)
        return pb.GetDocumentResponse(
            id=doc.id,
            title=doc.title,
            text=doc.text,
            metadata=convert.to_struct(doc.metadata),
            chunks=doc.chunks,
            content_hash=doc.content_hash,
            updated_at=doc.updated_at,
        )

    @_guarded
    async def CountDocuments(
        self, request: pb.CountDocumentsRequest, context: Any
    ) -> pb.CountDocumentsResponse:
        """Count documents and chunks, optionally under a filter."""
        req = CountRequest.model_validate(convert.with_filter(request, {"namespace": request.namespace}))
        resp = await self._core.count(req)
        return pb.CountDocumentsResponse(
            documents=resp.documents, chunks=resp.chunks, index_version=resp.index_version
        )

    # ------------------------------------------------------------------ profiles

    @_guarded
    async def ListProfiles(self, request: pb.ListProfilesRequest, context: Any) -> pb.ListProfilesResponse:
        """Every profile at its active version."""
        return pb.ListProfilesResponse(
            profiles=[convert.profile_message(p) for p in self._core.profiles.list()]
        )

    @_guarded
    async def GetProfile(self, request: pb.GetProfileRequest, context: Any) -> pb.Profile:
        """A profile at its active version."""
        return convert.profile_message(self._core.profiles.get(validate_name(request.name)))

    @_guarded
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

    @_guarded
    async def ListProfileVersions(
        self, request: pb.ListProfileVersionsRequest, context: Any
    ) -> pb.ListProfileVersionsResponse:
        """Every version of a profile, oldest first."""
        versions = await self._core.profiles.versions(validate_name(request.name))
        return pb.ListProfileVersionsResponse(versions=[convert.profile_message(p) for p in versions])

    @_guarded
    async def RollbackProfile(self, request: pb.RollbackProfileRequest, context: Any) -> pb.Profile:
        """Make an earlier version's settings active again, as a new version."""
        body = RollbackRequest.model_validate({"version": request.version})
        return convert.profile_message(
            await self._core.profiles.rollback(validate_name(request.name), body.version)
        )

    @_guarded
    async def GetNamespaceSettings(
        self, request: pb.GetNamespaceSettingsRequest, context: Any
    ) -> pb.NamespaceSettings:
        """A namespace's settings (its default profile)."""
        ns = DocumentRef.model_validate({"namespace": request.namespace, "doc_id": "-"}).namespace
        return pb.NamespaceSettings(namespace=ns, default_profile=self._core.profiles.namespace_default(ns))

    @_guarded
    async def SetNamespaceSettings(self, request: pb.NamespaceSettings, context: Any) -> pb.NamespaceSettings:
        """Set a namespace's default profile."""
        body = NamespaceSettings.model_validate(
            {"namespace": request.namespace, "default_profile": request.default_profile}
        )
        await self._core.profiles.set_namespace_default(body.namespace, body.default_profile)
        return request


def _in_message(err: KnowledgeError, index: int) -> KnowledgeError:
    """Name the streamed message that failed (earlier messages are already ingested)."""
    return type(err)(f"IngestStream message {index}: {err.message}", field=err.field)


# ----------------------------------------------------------------------------- server


def create_server(
    core: KnowledgeCore, settings: Settings, *, port: int | None = None
) -> tuple[grpc.aio.Server, int]:
    """Build and bind (but do not start) the server; return it and the bound port.

    ``port`` defaults to ``settings.grpc_port``; 0 picks a free port. Start it with
    :func:`start_server` so the health service reports SERVING.
    """
    server = grpc.aio.server(
        interceptors=grpc_interceptors(),
        options=[
            ("grpc.max_receive_message_length", limits.MAX_REQUEST_BYTES),
            ("grpc.max_send_message_length", limits.MAX_REQUEST_BYTES),
        ],
    )
    pb_grpc.add_KnowledgeServiceServicer_to_server(KnowledgeServicer(core), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    _HEALTH[server] = health_servicer
    reflection.enable_server_reflection([SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    host = settings.grpc_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    address = f"{host}:{settings.grpc_port if port is None else port}"
    if settings.tls_cert_file and settings.tls_key_file:
        credentials = grpc.ssl_server_credentials(
            [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())]
        )
        bound = server.add_secure_port(address, credentials)
    else:
        bound = server.add_insecure_port(address)
    if not bound:
        raise RuntimeError(f"gRPC server could not bind {address}")
    return server, bound


async def set_serving(server: grpc.aio.Server, serving: bool) -> None:
    """Report SERVING or NOT_SERVING for "" and knowledge.v1.KnowledgeService."""
    response = health_pb2.HealthCheckResponse
    status = response.SERVING if serving else response.NOT_SERVING
    for service in ("", SERVICE_NAME):
        await _HEALTH[server].set(service, status)


async def start_server(server: grpc.aio.Server) -> None:
    """Start a server from :func:`create_server`, then report SERVING."""
    await server.start()
    await set_serving(server, True)


async def stop_server(server: grpc.aio.Server, grace: float | None = None) -> None:
    """Report NOT_SERVING, then stop, letting in-flight calls finish within ``grace`` seconds."""
    health_servicer = _HEALTH.get(server)
    if health_servicer is not None:
        await health_servicer.enter_graceful_shutdown()
    await server.stop(grace)
