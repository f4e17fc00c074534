"""API keys against the real service with keys configured: Bearer credentials, Unauthorized mapping."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import knowledge_client as kc
from knowledge_service.core.config import Settings

from .client_support import NS, Service, blocking

CREW_KEY, OPS_KEY = "crew-secret", "ops-secret"


def _key(name: str, raw: str, namespaces: list[str], roles: list[str]) -> dict[str, object]:
    return {
        "name": name,
        "sha256": hashlib.sha256(raw.encode()).hexdigest(),
        "namespaces": namespaces,
        "roles": roles,
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The root fixture's settings, with two keys: a crew's (search on NS) and an operator's."""
    keys = [
        _key("crew", CREW_KEY, [NS], ["search"]),
        _key("ops", OPS_KEY, ["*"], ["search", "ingest", "admin"]),
    ]
    return Settings(
        data_dir=tmp_path / "data", http_port=0, grpc_port=0, optimize_idle_s=0, api_keys=json.dumps(keys)
    )


def _expect(call: object, status: str, http_status: int, transport: str) -> kc.Unauthorized:
    with pytest.raises(kc.Unauthorized) as err:
        call()  # type: ignore[operator]
    assert err.value.status == status and not err.value.retryable
    if transport == "http":
        assert err.value.http_status == http_status
    return err.value


def _check(target: str, transport: str) -> None:
    crew = kc.KnowledgeClient(target, transport=transport, api_key=CREW_KEY)
    assert crew.search(NS, "who do I page?", top_k=1).results[0].doc_id == "oncall"
    assert crew.count(NS).documents == 3

    for key in (None, "wrong"):
        anonymous = kc.KnowledgeClient(target, transport=transport, api_key=key)
        err = _expect(lambda c=anonymous: c.search(NS, "pager"), "UNAUTHENTICATED", 401, transport)
        assert "API key" in err.detail
        anonymous.close()
    _expect(lambda: crew.search("elsewhere", "pager"), "PERMISSION_DENIED", 403, transport)
    _expect(lambda: crew.ingest(NS, [{"id": "x", "text": "t"}]), "PERMISSION_DENIED", 403, transport)
    _expect(lambda: crew.put_profile("p", {"top_k": 1}), "PERMISSION_DENIED", 403, transport)

    ops = kc.KnowledgeClient(target, transport=transport, api_key=OPS_KEY)
    assert ops.ingest("elsewhere", [{"id": "x", "text": "tide tables"}]).results[0].status == "created"
    assert ops.put_profile("p", {"top_k": 1}).version >= 1
    for client in (crew, ops):
        client.close()


async def test_keys_are_sent_and_refusals_are_unauthorized(service: Service, transport: str):
    await blocking(_check, service.target(transport), transport)


async def test_the_tool_carries_its_key(service: Service, transport: str):
    from knowledge_client.crewai import KnowledgeSearchTool

    target = service.target(transport)
    keyed = KnowledgeSearchTool(target=target, transport=transport, namespace=NS, api_key=CREW_KEY)
    assert "[1]" in await blocking(keyed._run, "who do I page?")
    keyless = KnowledgeSearchTool(target=target, transport=transport, namespace=NS)
    text = await blocking(keyless._run, "who do I page?")
    assert text.startswith("knowledge_search failed: not authorised") and "will not help" in text
    keyed.close()
    keyless.close()
