"""Names are validated whole, and every invalid filter is a 422 / INVALID_ARGUMENT, on both doors."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2

from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc

BAD_FILTERS = [
    {"field": "lang\n", "eq": "en"},  # a trailing newline used to pass the key pattern
    {"field": "year", "eq": 2**70},  # beyond the engine's 64-bit integers
    {"field": "year", "range": {"gte": float("nan")}},
    {"field": "year", "range": {"lt": float("inf")}},
    {"field": "tags", "any": ["x" * 1001]},
    {"field": "tags", "any": [1, "mixed"]},
]


@pytest.fixture
async def http(http_url: str):
    async with httpx.AsyncClient(base_url=http_url, timeout=30) as client:
        r = await client.post(
            "/v1/namespaces/kb/documents",
            json={"documents": [{"id": "d", "text": "Names are checked whole.", "metadata": {"lang": "en"}}]},
        )
        assert r.status_code == 200
        yield client


@pytest.mark.parametrize("flt", BAD_FILTERS, ids=lambda f: json.dumps(f)[:40])
async def test_invalid_filters_are_422_everywhere(http: httpx.AsyncClient, flt: dict) -> None:
    body = json.dumps(
        {"query": "names", "filter": flt}
    )  # json.dumps writes NaN/Infinity as Python reads them
    calls = [
        http.post("/v1/namespaces/kb/search", content=body, headers={"content-type": "application/json"}),
        http.get("/v1/namespaces/kb/count", params={"filter": json.dumps(flt)}),
        http.post(
            "/v1/namespaces/kb/documents:delete",
            content=json.dumps({"filter": flt}),
            headers={"content-type": "application/json"},
        ),
    ]
    for call in calls:
        r = await call
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"].startswith("filter")
    assert (await http.get("/v1/namespaces/kb/count")).json()["documents"] == 1


async def test_metadata_keys_and_values_are_validated_whole(http: httpx.AsyncClient) -> None:
    docs = [
        {"id": "nl", "text": "t", "metadata": {"lang\n": "en"}},
        {"id": "big", "text": "t", "metadata": {"n": 2**64}},
        {"id": "ok", "text": "fine", "metadata": {"lang": "de"}},
    ]
    r = await http.post("/v1/namespaces/kb/documents", json={"documents": docs})
    results = {x["id"]: x for x in r.json()["results"]}
    assert results["nl"]["status"] == "failed" and "lang\\n" in results["nl"]["error"]
    assert results["big"]["status"] == "failed" and "64 bits" in results["big"]["error"]
    assert results["ok"]["status"] == "created"
    r = await http.post(
        "/v1/namespaces/kb/documents",
        content=b'{"documents": [{"id": "x", "text": "t", "metadata": {"f": NaN}}]}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and "finite" in r.json()["error"]["message"]
    r = await http.get("/v1/profiles/default%0A")
    assert r.status_code == 422


async def test_grpc_names_and_filters(stub: pb_grpc.KnowledgeServiceStub) -> None:
    for call in (
        stub.GetProfile(pb.GetProfileRequest(name="default\n")),
        stub.ListProfileVersions(pb.ListProfileVersionsRequest(name="default\n")),
        stub.GetNamespaceSettings(pb.GetNamespaceSettingsRequest(namespace="kb\n")),
        stub.CountDocuments(pb.CountDocumentsRequest(namespace="kb\n")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    flt = struct_pb2.Struct()
    flt.update({"field": "lang\n", "eq": "en"})
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CountDocuments(pb.CountDocumentsRequest(namespace="kb", filter=flt))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "filter.field" in err.value.details()
