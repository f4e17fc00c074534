"""The transport's own floor, for the bench: gRPC alone, in a child process, answering every Search
with one fixed answer and doing nothing else.

The bench captures a real answer of the served child (``GrpcCaller.answer``), starts this server
with it, and drives it with the same caller and concurrency as the real server's cache hits. What
it measures is what a ``grpc.aio`` server and client in Python cost on this machine by themselves:
the least a cache hit through the gRPC door can take here. Run alone::

    python -m knowledge_service.tools.echo PORT ANSWER_FILE   # ANSWER_FILE: a SearchResponse
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc

from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc
from knowledge_service.tools.served import free_port

READY_TIMEOUT_S = 60.0


class _Echo(pb_grpc.KnowledgeServiceServicer):
    def __init__(self, answer: pb.SearchResponse) -> None:
        self._answer = answer

    async def Search(self, request: pb.SearchRequest, context: Any) -> pb.SearchResponse:
        return self._answer


async def serve(port: int, answer: pb.SearchResponse) -> None:
    server = grpc.aio.server()
    pb_grpc.add_KnowledgeServiceServicer_to_server(_Echo(answer), server)
    if not server.add_insecure_port(f"127.0.0.1:{port}"):
        raise RuntimeError(f"echo: could not bind 127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


@asynccontextmanager
async def echo_server(answer: bytes, folder: Path) -> AsyncIterator[str]:
    """A ready echo child answering ``answer`` (a serialized SearchResponse); yields its target and
    always stops it on the way out."""
    path = folder / "echo-answer.pb"
    path.write_bytes(answer)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "knowledge_service.tools.echo", str(port), str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    target = f"127.0.0.1:{port}"
    try:
        started = time.monotonic()
        async with grpc.aio.insecure_channel(target) as channel:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"echo server exited with {proc.returncode}")
                try:
                    await asyncio.wait_for(channel.channel_ready(), timeout=1)
                    break
                except TimeoutError:
                    if time.monotonic() - started > READY_TIMEOUT_S:
                        raise RuntimeError(f"echo server not ready within {READY_TIMEOUT_S:g} s") from None
        yield target
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    port, answer_file = int(sys.argv[1]), Path(sys.argv[2])
    asyncio.run(serve(port, pb.SearchResponse.FromString(answer_file.read_bytes())))
