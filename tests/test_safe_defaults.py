"""Safe by default: readiness says words only; docs and reflection can be switched off."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from harness import asgi_client, free_port, serve_grpc
from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.models.base import DenseModel


async def test_readiness_names_no_host_port_or_error(tmp_path: Path, dense_encoder: DenseModel) -> None:
    port = free_port()  # nothing listens here: the cache is down
    settings = Settings(
        data_dir=tmp_path / "data", optimize_idle_s=0, redis_url=f"redis://127.0.0.1:{port}/0"
    )
    core = await Knowledge.open(settings, dense=dense_encoder)
    try:
        async with asgi_client(core, settings) as http:
            r = await http.get("/readyz")
        assert r.status_code == 200  # a cache outage only degrades
        body = r.json()
        assert body == {
            "ready": True,
            "model": "ok",
            "store": "ok",
            "cache": "down",
            "reranker": "not_configured",
        }
        assert str(port) not in r.text and "127.0.0.1" not in r.text
    finally:
        await core.close()


@pytest.mark.parametrize("enabled", [True, False])
async def test_docs_and_reflection_can_be_switched_off(
    tmp_path: Path, dense_encoder: DenseModel, enabled: bool
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", optimize_idle_s=0, docs_enabled=enabled, grpc_reflection=enabled
    )
    core = await Knowledge.open(settings, dense=dense_encoder)
    try:
        async with asgi_client(core, settings) as http:
            for path in ("/docs", "/openapi.json", "/redoc"):
                assert (await http.get(path)).status_code == (200 if enabled else 404), path
        async with serve_grpc(core, settings) as serving, serving.channel() as channel:
            reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
            if enabled:
                call = reflect.ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")])
                )
                (listed,) = [r async for r in call]
                names = {s.name for s in listed.list_services_response.service}
                assert "knowledge.v1.KnowledgeService" in names and "grpc.health.v1.Health" in names
            else:
                # no message sent: a request still being sent when the server answers UNIMPLEMENTED
                # at once fails on the client's side as INTERNAL ("Failed execute_batch")
                call = reflect.ServerReflectionInfo(iter([]))
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    _ = [r async for r in call]
                assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await core.close()
