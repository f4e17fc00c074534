"""The key is checked before a byte of the body is read, and body caps count bytes as they arrive.

These tests talk to real servers over raw sockets (in a thread: the server shares this event loop),
so that they can send a request's headers and only part of its body, and watch what the server
answers before the rest would arrive.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest

from harness import SERVE, ServedProcess, serve_env
from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_service.core import limits as L
from knowledge_service.core.config import Settings
from knowledge_service.ops.auth import hash_key

KEY = "k-ingest"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:  # overrides conftest's: keys required
    keys = [{"name": "ingest", "sha256": hash_key(KEY), "namespaces": ["kb"], "roles": ["ingest", "search"]}]
    return Settings(data_dir=tmp_path / "data", optimize_idle_s=0, api_keys=json.dumps(keys))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def send_partial(url: str, head: str, body_part: bytes, *, timeout: float = 10.0) -> bytes:
    """Send the request head and part of its body, then wait for an answer without sending more."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"\r\n" + body_part)
        sock.settimeout(timeout)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            pass
        return answer


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), f"no answer before the body was sent: {answer[:80]!r}"
    return int(answer.split()[1])


async def test_unauthenticated_body_is_refused_before_it_is_read(http_url: str) -> None:
    size = 30 * 1024 * 1024
    body = b'{"documents": [{"id": "x", "text": "' + b"a" * (size - 60) + b'"}]}'
    before = rss_mb()  # this process serves: the body must not land in it
    head = (
        "POST /v1/namespaces/kb/documents HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    )
    answer = await asyncio.to_thread(
        send_partial, http_url, head, body[: 64 * 1024]
    )  # 64 KiB of 30 MiB sent, then silence
    assert status_of(answer) == 401 and b"UNAUTHENTICATED" in answer
    assert rss_mb() - before < 50
    async with httpx.AsyncClient(base_url=http_url, timeout=60) as http:
        r = await http.post(
            "/v1/namespaces/other/documents", content=body[:100], headers={"authorization": f"Bearer {KEY}"}
        )
        assert r.status_code == 403  # wrong namespace: refused before the (broken) body is parsed


async def test_chunked_body_over_the_cap_is_refused_as_soon_as_it_passes(http_url: str) -> None:
    head = (
        "POST /v1/namespaces/kb/documents HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    )
    piece = b"a" * (1024 * 1024)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    over = L.MAX_REQUEST_BYTES // len(piece) + 2  # just past the cap; the body never ends
    answer = await asyncio.to_thread(send_partial, http_url, head, chunk * over, timeout=30)
    assert status_of(answer) == 413
    assert b"PAYLOAD" in answer or b"cap" in answer


async def test_small_calls_have_a_small_body_cap(http_url: str) -> None:
    big = {"query": "q", "filter": {"field": "t", "eq": "x" * (L.MAX_SMALL_BODY_BYTES + 10)}}
    async with httpx.AsyncClient(base_url=http_url, timeout=60) as http:
        r = await http.post("/v1/namespaces/kb/search", json=big, headers={"authorization": f"Bearer {KEY}"})
    assert r.status_code == 413
    assert f"{L.MAX_SMALL_BODY_BYTES}-byte cap" in r.json()["error"]["message"]


async def test_multipart_uploads_are_bounded_while_parsed(http_url: str) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=http_url, timeout=120) as http:
        many = [
            ("files", (f"f{i}.txt", b"some text", "text/plain")) for i in range(L.MAX_FILES_PER_REQUEST + 1)
        ]
        r = await http.post("/v1/namespaces/kb/files", files=many, headers=auth)
        assert r.status_code == 422 and "MAX_FILES_PER_REQUEST" in r.json()["error"]["message"]
        huge = [("files", ("big.txt", b"word " * (L.MAX_FILE_BYTES // 5 + 1), "text/plain"))]
        r = await http.post("/v1/namespaces/kb/files", files=huge, headers=auth)
        assert r.status_code == 413 and "MAX_FILE_BYTES" in r.json()["error"]["message"]
        r = await http.post(
            "/v1/namespaces/kb/files", files=[("files", ("ok.txt", b"fine text", "text/plain"))], headers=auth
        )
        assert r.status_code == 200 and r.json()["results"][0]["status"] == "created"
        r = await http.post("/v1/namespaces/kb/files", data={"nope": "1"}, files=many[:1], headers=auth)
        assert r.status_code == 422 and "unknown form field" in r.json()["error"]["message"]


async def test_grpc_key_is_checked_before_the_message_is_parsed(channel: grpc.aio.Channel) -> None:
    raw = channel.unary_unary("/knowledge.v1.KnowledgeService/Ingest")  # bytes in, bytes out
    garbage = b"\xff\xff\xff\xff not a protobuf message"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await raw(garbage)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:  # with the key, the message is parsed (and fails)
        await raw(garbage, metadata=(("authorization", f"Bearer {KEY}"),))
    assert err.value.code() != grpc.StatusCode.UNAUTHENTICATED
    ok = channel.unary_unary(
        "/knowledge.v1.KnowledgeService/Ingest",
        request_serializer=pb.IngestRequest.SerializeToString,
        response_deserializer=pb.IngestResponse.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:  # role right, namespace wrong
        await ok(
            pb.IngestRequest(namespace="other", documents=[pb.Document(id="x", text="y")]),
            metadata=(("authorization", f"Bearer {KEY}"),),
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


# ---- a real `knowledge serve` process ----------------------------------------------------------


def served_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return serve_env(tmp_path / "served", KNOWLEDGE_LOG_LEVEL="WARNING", **extra)


def process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_refused_bodies_cost_a_served_process_no_memory(tmp_path: Path, settings: Settings) -> None:
    served = ServedProcess(served_env(tmp_path, KNOWLEDGE_API_KEYS=settings.api_keys or ""))
    url = served.url
    try:
        await served.ready()
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            before = process_rss_mb(served.pid)
            body = b'{"documents": [{"id": "x", "text": "' + b"a" * (30 * 1024 * 1024) + b'"}]}'
            try:
                r = await http.post(
                    "/v1/namespaces/kb/documents", content=body, headers={"content-type": "application/json"}
                )
                assert r.status_code == 401
            except httpx.WriteError:  # the server answered and closed before the client was done
                pass
            head = (
                "POST /v1/namespaces/kb/documents HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {KEY}\r\nTransfer-Encoding: chunked\r\n"
            )
            piece = b"a" * (1024 * 1024)
            chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            unread = process_rss_mb(served.pid) - before  # the 30 MiB body was refused unread
            assert unread < 20, f"the service grew by {unread:.0f} MB refusing a body it should not read"
            # A body passing its cap is read up to the cap (64 MiB), never beyond, and not kept: after
            # two such refusals the process is still within one cap of where it started.
            cap_mb = L.MAX_REQUEST_BYTES / 2**20
            for _ in range(2):
                answer = await asyncio.to_thread(send_partial, url, head, chunk * 100, timeout=60)  # 100 MiB
                assert status_of(answer) == 413
                grown = process_rss_mb(served.pid) - before
                assert grown < cap_mb + 20, f"grew by {grown:.0f} MB past a {cap_mb:.0f} MiB cap"
            assert (await http.get("/readyz")).status_code == 200
    finally:
        served.stop()


def test_serving_beyond_loopback_without_keys_is_refused(tmp_path: Path) -> None:
    env = served_env(tmp_path, KNOWLEDGE_HTTP_HOST="0.0.0.0")
    done = subprocess.run([sys.executable, "-c", SERVE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "without API keys" in done.stderr and "KNOWLEDGE_ALLOW_UNAUTHENTICATED" in done.stderr
    assert not (tmp_path / "served").exists()  # refused before anything was opened
