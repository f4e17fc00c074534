"""The one way tests serve a Knowledge (or a stand-in object) and wait for something to happen.

- ``serve_grpc``: the real gRPC front door on a free port (0), over any object shaped like the core;
- ``serve_http``: the real HTTP front door in a real uvicorn, on a free port unless one is given;
- ``asgi_client``: an httpx client calling the HTTP app in-process (no socket, no server);
- ``ServedProcess``: a real ``knowledge serve`` child process, its output collected as it runs;
- ``eventually`` / ``wait_until``: poll a condition against a deadline, instead of sleeping and
  hoping that was long enough.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
import pytest
import uvicorn

from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.doors.grpc.server import create_server, start_server, stop_server
from knowledge_service.doors.http.app import create_app

T = TypeVar("T")

# ----------------------------------------------------------------------------- waits


def _failed(timeout: float, what: str | None, condition: Callable[..., Any]) -> AssertionError:
    name = what or getattr(condition, "__qualname__", repr(condition))
    return AssertionError(f"not true within {timeout:g} s: {name}")


async def eventually(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str | None = None,
) -> T:
    """Call ``condition`` (plain or async) until it returns something truthy, and return that;
    fail the test once ``timeout`` seconds pass. Exceptions from ``condition`` propagate."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise _failed(timeout, what, condition)
        await asyncio.sleep(interval)  # the poll interval, not a guess at how long it takes


def wait_until(
    condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02, what: str | None = None
) -> T:
    """``eventually`` for code that cannot await (sync fixtures, threads)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() >= deadline:
            raise _failed(timeout, what, condition)
        time.sleep(interval)  # the poll interval
    return value


# ----------------------------------------------------------------------------- in-process servers


def free_port() -> int:
    """A port nothing listens on (for a server that must be started on a known port, or never)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class GrpcServing:
    """A started gRPC server: the server itself (for set_serving), its port and its target."""

    server: grpc.aio.Server
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.target)


@asynccontextmanager
async def serve_grpc(
    core: Any, settings: Settings | None = None, *, port: int = 0
) -> AsyncIterator[GrpcServing]:
    """The real gRPC front door over ``core`` (the real one or a stand-in with the attributes the
    door uses) on ``port``, 0 for a free one. ``settings`` default to ``core.settings``, or to the
    defaults for a stand-in without settings."""
    if settings is None:
        settings = getattr(core, "settings", None) or Settings()
    server, bound = create_server(core, settings, port=port)
    assert bound > 0
    await start_server(server)
    try:
        yield GrpcServing(server, bound)
    finally:
        await stop_server(server, 0)


@asynccontextmanager
async def grpc_channel(core: Any, settings: Settings | None = None) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to the gRPC front door over ``core`` (see ``serve_grpc``)."""
    async with serve_grpc(core, settings) as serving, serving.channel() as channel:
        yield channel


@asynccontextmanager
async def serve_http(core: Any, settings: Settings, *, port: int = 0) -> AsyncIterator[str]:
    """The real HTTP front door over ``core`` in a real uvicorn on ``port`` (0: a free one, chosen
    by the kernel when binding); yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, core), host="127.0.0.1", port=port, log_level="warning")
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started or task.done(), timeout=30, what="uvicorn started")
        if task.done():  # it could not start (the port is taken...): say why
            task.result()
            raise AssertionError("uvicorn stopped before it started")
        bound = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def asgi_client(core: Any, settings: Settings, **kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client that calls the HTTP app over ``core`` in-process (no server, no lifespan)."""
    transport = httpx.ASGITransport(app=create_app(settings, core))
    async with httpx.AsyncClient(transport=transport, base_url="http://knowledge", **kwargs) as client:
        yield client


# ----------------------------------------------------------------------------- a served process

SERVE = "import sys; from knowledge_service.cli.main import app; sys.argv = ['knowledge', 'serve']; app()"


def serve_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``knowledge serve`` on ``data_dir``, both doors on free ports."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "KNOWLEDGE_DATA_DIR": str(data_dir),
        "KNOWLEDGE_HTTP_PORT": str(free_port()),
        "KNOWLEDGE_GRPC_PORT": str(free_port()),
        **extra,
    }


class ServedProcess:
    """A real ``knowledge serve`` child process (environment from ``serve_env``), with its output
    read as it comes: the pipe never fills, and a test can wait for a line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.http_port = int(env["KNOWLEDGE_HTTP_PORT"])
        self.url = f"http://127.0.0.1:{self.http_port}"
        self._lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self._lines.append(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def _running(self) -> None:
        if self.proc.poll() is not None:
            self._reader.join(timeout=5)
            raise AssertionError(f"`knowledge serve` exited with {self.proc.returncode}:\n{self.output}")

    async def ready(self, timeout: float = 120) -> None:
        """Wait until /readyz answers 200; fail (with the output) if the process exits first."""
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:

            async def answers() -> bool:
                self._running()
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(answers, timeout=timeout, interval=0.1, what="the service became ready")

    async def logged(self, words: str, timeout: float = 30) -> None:
        """Wait until the process has written a line containing ``words``."""
        await eventually(
            lambda: any(words in line for line in list(self._lines)),
            timeout=timeout,
            what=f"the service logged {words!r}",
        )

    def accepting(self) -> bool:
        """Whether the HTTP port takes connections (a bare connect: no request is sent)."""
        try:
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait; killed if it does not exit in time. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)


@contextmanager
def served_child(data_dir: Path, **extra: str) -> Iterator[ServedProcess]:
    """A ready ``knowledge serve`` child on ``data_dir`` (``serve_env``), stopped afterwards; for
    module fixtures whose tests talk to it synchronously."""
    proc = ServedProcess(serve_env(data_dir, **extra))
    try:
        asyncio.run(proc.ready())
        yield proc
    finally:
        proc.stop()


@asynccontextmanager
async def opened(settings: Settings, **kwargs: Any) -> AsyncIterator[Knowledge]:
    """A Knowledge core opened on ``settings`` (``dense=`` and the rest as for ``Knowledge.open``),
    closed afterwards."""
    core = await Knowledge.open(settings, **kwargs)
    try:
        yield core
    finally:
        await core.close()


class OneCallAtATime:
    """A qdrant-client whose calls run one at a time.

    Local mode (":memory:") is plain Python and not thread-safe: a query that runs while another
    thread deletes its points returns them without a payload, which a server never does (it applies
    each request whole). The core calls the store from several threads, so the tests give it a
    client that behaves like a server in this respect: each call whole, calls still interleaved
    between each other in any order.
    """

    def __init__(self, client: Any) -> None:
        self._client, self._lock = client, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return one_at_a_time


def redis_answers(port: int) -> bool:
    """Whether a Redis on 127.0.0.1:``port`` answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A throwaway redis-server on a free port that keeps nothing on disk; ``stop`` kills it, and
    ``start`` brings it back on the same port."""

    def __init__(self, missing: str = "no redis-server binary (apt-get install redis-server)") -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(missing)
        self.binary, self.port = binary, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [self.binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: redis_answers(self.port), timeout=10, what="the throwaway redis-server answers")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
