"""The gRPC front door: translates knowledge.v1 messages to and from the models and calls the core.

Lifecycle::

    server, port = create_server(core, settings)   # built and bound, not started
    await start_server(server)                     # start, then health = SERVING
    ...
    await stop_server(server, settings.grpc_grace_s)  # health = NOT_SERVING, then graceful stop

Each handler translates the request (``convert.to_model``), calls a pipeline and translates the
answer (``convert.to_message``); the key check and error table are in ``guard.py``, the profile
and evaluation RPCs in ``profiles.py``.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import ValidationError

from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc
from knowledge_service.core import limits
from knowledge_service.core.errors import InvalidArgument, KnowledgeError, from_validation_error
from knowledge_service.doors import calls
from knowledge_service.doors.grpc.convert import to_message, to_model
from knowledge_service.doors.grpc.guard import AccessInterceptor, authorization, guarded
from knowledge_service.doors.grpc.profiles import ProfileRpcs
from knowledge_service.ops.tracing import grpc_interceptors
from knowledge_service.schemas.documents import (
    CountRequest,
    DeleteRequest,
    DocumentRef,
    IngestFilesRequest,
    IngestRequest,
    IngestResponse,
    IngestResult,
)
from knowledge_service.schemas.search import SearchRequest

if TYPE_CHECKING:
    from knowledge_service.app import Knowledge
    from knowledge_service.core.config import Settings

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["KnowledgeService"].full_name
_HEALTH: weakref.WeakKeyDictionary[grpc.aio.Server, health.aio.HealthServicer] = weakref.WeakKeyDictionary()

# ----------------------------------------------------------------------------- servicer


class KnowledgeServicer(ProfileRpcs, pb_grpc.KnowledgeServiceServicer):
    """Implements knowledge.v1.KnowledgeService on top of a Knowledge."""

    def __init__(self, core: Knowledge) -> None:
        self._core = core

    @guarded
    async def Search(self, request: pb.SearchRequest, context: Any) -> pb.SearchResponse:
        """Hybrid search over one namespace."""
        remaining = context.time_remaining()
        deadline = time.monotonic() + remaining if remaining is not None else None
        req = to_model(SearchRequest, request)
        calls.note(query=req.query)
        resp = await self._core.searcher.search(req, deadline)
        calls.note(profile=resp.profile)
        return to_message(pb.SearchResponse, resp)

    @guarded
    async def Ingest(self, request: pb.IngestRequest, context: Any) -> pb.IngestResponse:
        """Ingest one batch of documents."""
        resp = await self._core.documents.ingest(to_model(IngestRequest, request))
        return to_message(pb.IngestResponse, resp)

    @guarded
    async def IngestStream(
        self, request_iterator: AsyncIterator[pb.IngestRequest], context: Any
    ) -> pb.IngestResponse:
        """Ingest each streamed batch as it arrives; answer with every outcome.

        A stream carries at most MAX_STREAM_MESSAGES messages and MAX_STREAM_BYTES bytes: the
        message that would pass a bound is refused before it is ingested (the ones before it are).
        """
        keys = self._core.keys
        key = keys.authenticate(authorization(context))
        results: list[IngestResult] = []
        index_version, count, size = 0, 0, 0
        async for message in request_iterator:
            size += message.ByteSize()
            if count >= limits.MAX_STREAM_MESSAGES or size > limits.MAX_STREAM_BYTES:
                raise InvalidArgument(
                    f"IngestStream message {count}: a stream carries at most {limits.MAX_STREAM_MESSAGES} "
                    f"messages and {limits.MAX_STREAM_BYTES} bytes; messages 0-{count - 1} were ingested, "
                    "send the rest on a new stream",
                    field="documents",
                )
            keys.check_namespace(key, message.namespace)
            try:
                resp = await self._core.documents.ingest(to_model(IngestRequest, message))
            except ValidationError as exc:
                raise _in_message(from_validation_error(exc), count) from exc
            except KnowledgeError as exc:
                raise _in_message(exc, count) from exc
            results.extend(resp.results)
            index_version = resp.index_version
            count += 1
        if not count:
            raise InvalidArgument("IngestStream: send at least one IngestRequest")
        return to_message(pb.IngestResponse, IngestResponse(results=results, index_version=index_version))

    @guarded
    async def IngestFiles(self, request: pb.IngestFilesRequest, context: Any) -> pb.IngestResponse:
        """Parse uploaded files on the server and ingest them as one batch."""
        resp = await self._core.documents.ingest_files(to_model(IngestFilesRequest, request))
        return to_message(pb.IngestResponse, resp)

    @guarded
    async def DeleteDocuments(
        self, request: pb.DeleteDocumentsRequest, context: Any
    ) -> pb.DeleteDocumentsResponse:
        """Delete documents by id and/or metadata filter."""
        resp = await self._core.documents.delete(to_model(DeleteRequest, request))
        return to_message(pb.DeleteDocumentsResponse, resp)

    @guarded
    async def GetDocument(self, request: pb.GetDocumentRequest, context: Any) -> pb.GetDocumentResponse:
        """Return one stored document."""
        doc = await self._core.documents.get(to_model(DocumentRef, request))
        return to_message(pb.GetDocumentResponse, doc)

    @guarded
    async def CountDocuments(
        self, request: pb.CountDocumentsRequest, context: Any
    ) -> pb.CountDocumentsResponse:
        """Count documents and chunks, optionally under a filter."""
        resp = await self._core.documents.count(to_model(CountRequest, request))
        return to_message(pb.CountDocumentsResponse, resp)


def _in_message(err: KnowledgeError, index: int) -> KnowledgeError:
    """Name the streamed message that failed (earlier messages are already ingested)."""
    return type(err)(f"IngestStream message {index}: {err.message}", field=err.field)


# ----------------------------------------------------------------------------- server


def create_server(
    core: Knowledge, settings: Settings, *, port: int | None = None
) -> tuple[grpc.aio.Server, int]:
    """Build and bind (but do not start) the server; return it and the bound port.

    ``port`` defaults to ``settings.grpc_port``; 0 picks a free port. Start it with
    :func:`start_server` so the health service reports SERVING.
    """
    server = grpc.aio.server(
        # Tracing first (its span covers refusals too), then the key and role check.
        interceptors=[*grpc_interceptors(), AccessInterceptor(core.keys, core.metrics)],
        options=[
            ("grpc.max_receive_message_length", limits.MAX_REQUEST_BYTES),
            ("grpc.max_send_message_length", limits.MAX_REQUEST_BYTES),
        ],
    )
    pb_grpc.add_KnowledgeServiceServicer_to_server(KnowledgeServicer(core), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    _HEALTH[server] = health_servicer
    if settings.grpc_reflection:
        reflection.enable_server_reflection(
            [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
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
