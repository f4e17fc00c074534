"""A real ``knowledge serve`` child process for the bench: its own data dir, free ports, one backend.

The child inherits the bench's environment (so it runs with the same KNOWLEDGE_* settings) with
these changed: the data dir, both doors on free loopback ports, the embed backend and the folder
of ONNX exports (shared with the bench, so an export is made once). API keys and TLS are dropped:
the bench talks to its own child over loopback, unauthenticated. The child's output goes to a log
file next to its data dir (quoted when it fails to start), so no pipe can fill up.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

SERVE = "import sys; from knowledge_service.cli.main import app; sys.argv = ['knowledge', 'serve']; app()"
DROPPED = (
    "KNOWLEDGE_API_KEYS",
    "KNOWLEDGE_API_KEYS_FILE",
    "KNOWLEDGE_TLS_CERT_FILE",
    "KNOWLEDGE_TLS_KEY_FILE",
)
READY_TIMEOUT_S = 300.0  # loading torch and a model on a busy 2-core machine is slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def proc_memory_mb(pid: int | str = "self", field: str = "VmHWM") -> float | None:
    """A memory figure of a process from /proc, in MB: ``VmHWM`` its peak resident memory,
    ``VmRSS`` its resident memory now; None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


class ServedChild:
    """One ``knowledge serve`` process; ``ready()`` waits for /readyz, ``stop()`` always ends it."""

    def __init__(
        self, data_dir: Path, backend: str, models_dir: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.http_port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.ready_s: float | None = None
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        env = {k: v for k, v in os.environ.items() if k not in DROPPED}
        env.update(
            {
                "HF_HUB_OFFLINE": env.get("HF_HUB_OFFLINE", "1"),
                "KNOWLEDGE_DATA_DIR": str(data_dir),
                "KNOWLEDGE_HTTP_HOST": "127.0.0.1",
                "KNOWLEDGE_HTTP_PORT": str(self.http_port),
                "KNOWLEDGE_GRPC_HOST": "127.0.0.1",
                "KNOWLEDGE_GRPC_PORT": str(self.grpc_port),
                "KNOWLEDGE_EMBED_BACKEND": backend,
                "KNOWLEDGE_MODELS_DIR": str(models_dir),
                "KNOWLEDGE_AUTH_REQUIRED": "false",
                **(extra_env or {}),
            }
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir.parent / f"{data_dir.name}.serve.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-tail:].decode(errors="replace")
        except OSError:
            return ""

    async def ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Wait until /readyz answers 200; returns the seconds it took. Raises if the child exits."""
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"`knowledge serve` exited with {self.proc.returncode}:\n{self.output()}"
                    )
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return round(time.monotonic() - started, 2)
                except httpx.TransportError:
                    pass
                if time.monotonic() - started > timeout:
                    raise RuntimeError(f"`knowledge serve` not ready within {timeout:g} s:\n{self.output()}")
                await asyncio.sleep(0.2)

    def max_rss_mb(self) -> float | None:
        return proc_memory_mb(self.pid) if self.proc.poll() is None else None

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            self._log.close()
        return self.proc.returncode


@asynccontextmanager
async def served(
    data_dir: Path, backend: str, models_dir: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[ServedChild]:
    """A ready child serving ``data_dir`` with ``backend`` (and ``extra_env`` on top); stopped on
    the way out, also on error or cancellation (a failed start included)."""
    child = ServedChild(data_dir, backend, models_dir, extra_env)
    try:
        child.ready_s = await child.ready()
        yield child
    finally:
        child.stop()  # blocking on purpose: nothing may cancel it, the child must not outlive us
