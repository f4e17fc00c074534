"""Profiles and namespace settings through both clients and both transports, against the real service."""

from __future__ import annotations

import pytest

import knowledge_client as kc

from .client_support import NS, Service, blocking

QUERY = "who do I page when search is slow?"


def _profiles_round_trip(client: kc.KnowledgeClient) -> None:
    first = client.put_profile("precise", kc.RetrievalSettings(top_k=2, mode="dense"), note="fewer")
    assert (first.name, first.version, first.note) == ("precise", 1, "fewer")
    assert (first.settings.top_k, first.settings.mode, first.settings.candidates) == (2, "dense", 100)
    assert first.settings.fusion is not None and first.settings.fusion.method in ("rrf", "dbsf")
    assert client.get_profile("precise") == first
    assert {p.name for p in client.list_profiles()} >= {"default", "precise"}

    second = client.put_profile(
        "precise", {"top_k": 1, "fusion": kc.Fusion(method="rrf", k=10)}, expected_version=1
    )
    assert second.version == 2 and second.settings.fusion == kc.Fusion(method="rrf", k=10)
    with pytest.raises(kc.Conflict) as err:
        client.put_profile("precise", {"top_k": 3}, expected_version=1)
    assert err.value.status == "ABORTED"
    assert [p.version for p in client.profile_versions("precise")] == [1, 2]
    rolled = client.rollback_profile("precise", 1)
    assert (rolled.version, rolled.settings.top_k, rolled.settings.mode) == (3, 2, "dense")

    assert client.get_namespace_settings(NS).default_profile == "default"
    assert client.search(NS, QUERY).profile == "default"
    assert client.set_namespace_settings(NS, "precise") == kc.NamespaceSettings(
        namespace=NS, default_profile="precise"
    )
    resp = client.search(NS, QUERY)
    assert (resp.profile, resp.profile_version, len(resp.results)) == ("precise", 3, 2)
    assert len(client.search(NS, QUERY, overrides={"top_k": 1}).results) == 1
    assert len(client.search(NS, QUERY, profile="default", top_k=3).results) == 3
    client.set_namespace_settings(NS, "default")


async def test_profiles_round_trip(service: Service, transport: str):
    with kc.KnowledgeClient(service.target(transport), transport=transport) as client:
        await blocking(_profiles_round_trip, client)


async def test_async_profiles(service: Service, transport: str):
    async with kc.AsyncKnowledgeClient(service.target(transport), transport=transport) as client:
        made = await client.put_profile("quick", {"top_k": 1, "candidates": 10})
        assert made.version == 1 and (await client.get_profile("quick")).settings.candidates == 10
        assert "quick" in {p.name for p in await client.list_profiles()}
        again = await client.put_profile("quick", {"top_k": 2, "candidates": 10}, expected_version=1)
        assert [p.version for p in await client.profile_versions("quick")] == [1, 2]
        assert (await client.rollback_profile("quick", 1)).version == again.version + 1
        await client.set_namespace_settings(NS, "quick")
        assert (await client.get_namespace_settings(NS)).default_profile == "quick"
        resp = await client.search(NS, QUERY, explain=True)
        assert resp.profile == "quick" and len(resp.results) == 1
        assert resp.results[0].scores.fused_rank == 1
