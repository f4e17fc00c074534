"""Runs both front doors (HTTP and gRPC) over one core in one process."""

from __future__ import annotations

import logging

import uvicorn

from .config import Settings
from .core import KnowledgeCore
from .grpc_server import create_server, start_server, stop_server
from .http_app import create_app
from .logs import configure_logging
from .tracing import setup_tracing

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM, then drain gRPC within the grace period and close the store."""
    configure_logging(settings)
    setup_tracing(settings)
    core = await KnowledgeCore.open(settings)
    grpc_server, grpc_port = create_server(core, settings)
    await start_server(grpc_server)
    http = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, core),
            host=settings.http_host,
            port=settings.http_port,
            ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
        log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(settings.grpc_grace_s) or None,
        )
    )
    log.info(
        "gRPC on %s:%d, HTTP on %s:%d, store=%s, cache=%s, reranker=%s",
        settings.grpc_host,
        grpc_port,
        settings.http_host,
        settings.http_port,
        core.store.backend,
        core.cache.name,
        settings.rerank_model or "none",
    )
    try:
        await http.serve()
    finally:
        await stop_server(grpc_server, settings.grpc_grace_s)
        await core.close()
