"""Runs both front doors (HTTP and gRPC) over one core in one process."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
from collections.abc import Iterator

import uvicorn

from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.doors.grpc.server import create_server, start_server, stop_server
from knowledge_service.doors.http.app import create_app
from knowledge_service.ops.auth import KeyRing
from knowledge_service.ops.logs import configure_logging
from knowledge_service.ops.tracing import setup_tracing

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse to serve beyond this machine without API keys, unless told to on purpose."""
    exposed = sorted({h for h in (settings.http_host, settings.grpc_host) if not is_loopback(h)})
    if exposed and not KeyRing.from_settings(settings).enabled and not settings.allow_unauthenticated:
        raise ValueError(
            f"refusing to serve on {', '.join(exposed)} without API keys: configure "
            "KNOWLEDGE_API_KEYS_FILE or KNOWLEDGE_API_KEYS (see the README, Security), bind "
            "127.0.0.1, or set KNOWLEDGE_ALLOW_UNAUTHENTICATED=true to serve unauthenticated on purpose"
        )


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: ours stop both doors at once."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM; then stop accepting on both front doors, let in-flight requests
    finish within ``grpc_grace_s``, and close (flush) the store."""
    check_exposure(settings)
    configure_logging(settings)
    setup_tracing(settings)
    core = await Knowledge.open(settings)
    grpc_server, grpc_port = create_server(core, settings)
    await start_server(grpc_server)
    grace = settings.grpc_grace_s
    http = _QuietServer(
        uvicorn.Config(
            create_app(settings, core),
            host=settings.http_host,
            port=settings.http_port,
            ssl_certfile=settings.tls_cert_file,
            ssl_keyfile=settings.tls_key_file,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=max(1, int(grace)),
        )
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    http_task = asyncio.create_task(http.serve())
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
        await asyncio.wait(
            {http_task, asyncio.create_task(stopping.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        log.info("shutting down: in-flight requests get up to %.1f s", grace)
        http.should_exit = True
        await asyncio.gather(stop_server(grpc_server, grace), http_task)
    finally:
        await core.close()
        log.info("stopped; store closed")
