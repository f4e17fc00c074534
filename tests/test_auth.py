"""API keys on both front doors: missing, wrong, wrong scope and right, for every kind of call."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import httpx
import pytest

from harness import serve_http
from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc
from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.ops.auth import KeyRing, hash_key

KEYS = {  # raw key -> (namespaces, roles)
    "k-search-a": (["a"], ["search"]),
    "k-ingest-a": (["a"], ["ingest"]),
    "k-admin-a": (["a"], ["admin", "search"]),
    "k-root": (["*"], ["search", "ingest", "admin"]),
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:  # overrides conftest's: the same, with keys configured
    keys = [
        {"name": raw, "sha256": hash_key(raw), "namespaces": ns, "roles": roles}
        for raw, (ns, roles) in KEYS.items()
    ]
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(keys))
    return Settings(data_dir=tmp_path / "data", optimize_idle_s=0, api_keys_file=path)


@pytest.fixture
async def http(http_url: str):
    async with httpx.AsyncClient(base_url=http_url, timeout=30) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


DOC = {"documents": [{"id": "x", "text": "Keys are scoped to namespaces and roles."}]}


async def test_http_keys(http: httpx.AsyncClient) -> None:
    async def status(method: str, url: str, key: str | None, **kw) -> int:
        r = await http.request(method, url, headers=bearer(key) if key else {}, **kw)
        return r.status_code

    search = {"json": {"query": "keys"}}
    for ns in ("a", "b"):
        assert await status("POST", f"/v1/namespaces/{ns}/documents", "k-root", json=DOC) == 200
    # missing and wrong keys
    assert await status("POST", "/v1/namespaces/a/search", None, **search) == 401
    assert await status("POST", "/v1/namespaces/a/search", "k-nope", **search) == 401
    r = await http.post(
        "/v1/namespaces/a/search", headers={"authorization": "Basic abc"}, json={"query": "q"}
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"
    # search: right namespace only
    assert await status("POST", "/v1/namespaces/a/search", "k-search-a", **search) == 200
    assert await status("POST", "/v1/namespaces/b/search", "k-search-a", **search) == 403
    assert await status("GET", "/v1/namespaces/a/count", "k-search-a") == 200
    assert await status("GET", "/v1/namespaces/b/count", "k-search-a") == 403
    assert await status("GET", "/v1/namespaces/b/documents/x", "k-search-a") == 403
    # ingest: role and namespace
    assert await status("POST", "/v1/namespaces/a/documents", "k-search-a", json=DOC) == 403
    assert await status("POST", "/v1/namespaces/a/documents", "k-ingest-a", json=DOC) == 200
    assert await status("POST", "/v1/namespaces/b/documents", "k-ingest-a", json=DOC) == 403
    files = {"files": ("n.txt", b"text", "text/plain")}
    assert await status("POST", "/v1/namespaces/b/files", "k-ingest-a", files=files) == 403
    # delete: admin on that namespace
    assert await status("DELETE", "/v1/namespaces/a/documents/x", "k-ingest-a") == 403
    assert await status("DELETE", "/v1/namespaces/b/documents/x", "k-admin-a") == 403
    assert await status("DELETE", "/v1/namespaces/a/documents/x", "k-admin-a") == 200
    r = await http.get("/v1/namespaces/b/count", headers=bearer("k-root"))
    assert r.json()["documents"] == 1  # b untouched
    # profiles: shared by all namespaces, so changes need admin on "*"
    assert await status("GET", "/v1/profiles", "k-search-a") == 200
    assert await status("PUT", "/v1/profiles/p", "k-admin-a", json={"settings": {}}) == 403
    assert await status("PUT", "/v1/profiles/p", "k-root", json={"settings": {}}) == 200
    assert await status("POST", "/v1/profiles/p/rollback", "k-admin-a", json={"version": 1}) == 403
    body = {"default_profile": "p"}
    assert await status("PUT", "/v1/namespaces/b/settings", "k-admin-a", json=body) == 403
    assert await status("PUT", "/v1/namespaces/a/settings", "k-admin-a", json=body) == 200
    ev = {"namespace": "b", "queries": {"q": "keys"}, "qrels": {"q": {"x": 1}}, "profiles": [{"name": "p"}]}
    assert await status("POST", "/v1/evaluations", "k-admin-a", json=ev) == 403
    # health stays open by default
    assert await status("GET", "/healthz", None) == 200 and await status("GET", "/readyz", None) == 200


async def test_grpc_keys(stub: pb_grpc.KnowledgeServiceStub) -> None:
    async def code(call, request, key: str | None) -> grpc.StatusCode:
        try:
            await call(request, metadata=(("authorization", f"Bearer {key}"),) if key else ())
            return grpc.StatusCode.OK
        except grpc.aio.AioRpcError as err:
            return err.code()

    doc = pb.Document(id="x", text="Keys are scoped.")
    assert (
        await code(stub.Ingest, pb.IngestRequest(namespace="b", documents=[doc]), "k-root")
        == grpc.StatusCode.OK
    )
    q = pb.SearchRequest(namespace="a", query="keys")
    assert await code(stub.Search, q, None) == grpc.StatusCode.UNAUTHENTICATED
    assert await code(stub.Search, q, "k-nope") == grpc.StatusCode.UNAUTHENTICATED
    assert await code(stub.Search, q, "k-search-a") == grpc.StatusCode.OK
    qb = pb.SearchRequest(namespace="b", query="keys")
    assert await code(stub.Search, qb, "k-search-a") == grpc.StatusCode.PERMISSION_DENIED
    count_b = pb.CountDocumentsRequest(namespace="b")
    assert await code(stub.CountDocuments, count_b, "k-search-a") == grpc.StatusCode.PERMISSION_DENIED
    ing_b = pb.IngestRequest(namespace="b", documents=[doc])
    assert await code(stub.Ingest, ing_b, "k-ingest-a") == grpc.StatusCode.PERMISSION_DENIED
    stream = stub.IngestStream(
        iter([pb.IngestRequest(namespace="a", documents=[doc]), ing_b]),
        metadata=(("authorization", "Bearer k-ingest-a"),),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stream
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "'b'" in err.value.details()
    del_b = pb.DeleteDocumentsRequest(namespace="b", ids=["x"])
    assert await code(stub.DeleteDocuments, del_b, "k-admin-a") == grpc.StatusCode.PERMISSION_DENIED
    put = pb.PutProfileRequest(name="p", settings=pb.RetrievalSettings())
    assert await code(stub.PutProfile, put, "k-admin-a") == grpc.StatusCode.PERMISSION_DENIED
    assert await code(stub.PutProfile, put, "k-root") == grpc.StatusCode.OK
    assert await code(stub.ListProfiles, pb.ListProfilesRequest(), "k-search-a") == grpc.StatusCode.OK
    count = await stub.CountDocuments(count_b, metadata=(("authorization", "Bearer k-root"),))
    assert count.documents == 1
    upload = [pb.UploadedFile(filename="n.txt", data=b"text")]
    files_a, files_b = (pb.IngestFilesRequest(namespace=ns, files=upload) for ns in ("a", "b"))
    assert await code(stub.IngestFiles, files_a, "k-search-a") == grpc.StatusCode.PERMISSION_DENIED
    assert await code(stub.IngestFiles, files_b, "k-ingest-a") == grpc.StatusCode.PERMISSION_DENIED
    assert await code(stub.IngestFiles, files_a, "k-ingest-a") == grpc.StatusCode.OK


async def test_grpc_evaluate_needs_admin_on_the_namespace_in_its_body(
    stub: pb_grpc.KnowledgeServiceStub,
) -> None:
    async def code(request: pb.EvaluateRequest, key: str) -> grpc.StatusCode:
        try:
            await stub.Evaluate(request, metadata=(("authorization", f"Bearer {key}"),))
            return grpc.StatusCode.OK
        except grpc.aio.AioRpcError as err:
            return err.code()

    def evaluate(namespace: str) -> pb.EvaluateRequest:
        return pb.EvaluateRequest(
            namespace=namespace,
            queries={"q": "keys"},
            qrels={"q": pb.Judgments(grades={"x": 1})},
            profiles=[pb.ProfileSpec(name="default")],
        )

    assert await code(evaluate("a"), "k-search-a") == grpc.StatusCode.PERMISSION_DENIED  # no admin role
    assert await code(evaluate("b"), "k-admin-a") == grpc.StatusCode.PERMISSION_DENIED  # not its namespace
    assert await code(evaluate("a"), "k-admin-a") == grpc.StatusCode.OK


def test_key_configuration_is_validated() -> None:
    with pytest.raises(ValueError, match="no API key is configured"):
        KeyRing([], required=True)
    with pytest.raises(ValueError, match="invalid"):
        KeyRing.from_settings(
            Settings(
                api_keys='[{"name": "x", "sha256": "not-a-hash", "namespaces": ["*"], "roles": ["search"]}]'
            )
        )
    ring = KeyRing.from_settings(
        Settings(
            api_keys=json.dumps(
                [{"name": "x", "sha256": hash_key("s3cret"), "namespaces": ["*"], "roles": ["search"]}]
            )
        )
    )
    assert ring.authenticate("Bearer s3cret").name == "x"
    assert "s3cret" not in json.dumps([k.model_dump(mode="json") for k in ring.keys])  # stored hashed


async def test_rate_limit_health_and_metrics_protection(tmp_path: Path, dense_encoder) -> None:
    keys = json.dumps(
        [{"name": "one", "sha256": hash_key("k1"), "namespaces": ["*"], "roles": ["search", "admin"]}]
    )
    settings = Settings(
        data_dir=tmp_path / "data",
        optimize_idle_s=0,
        api_keys=keys,
        rate_limit_per_key=0.05,  # one token per 20 s: none comes back while the test runs
        rate_limit_burst=2,
        health_public=False,
        metrics_public=False,
    )
    core = await Knowledge.open(settings, dense=dense_encoder)
    try:
        async with serve_http(core, settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            assert (await http.get("/healthz")).status_code == 401
            assert (await http.get("/readyz")).status_code == 401
            assert (await http.get("/metrics")).status_code == 401
            codes = [(await http.get("/v1/profiles", headers=bearer("k1"))).status_code for _ in range(3)]
            assert codes == [200, 200, 429]  # burst of 2, then 0.05/s
            r = await http.get("/v1/profiles", headers=bearer("k1"))
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            assert "rate limit" in r.json()["error"]["message"]
    finally:
        await core.close()
