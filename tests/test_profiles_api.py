"""Profiles, namespace settings and evaluations over both front doors (real HTTP and gRPC servers)."""

from __future__ import annotations

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2

from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc
from knowledge_service.app import Knowledge
from knowledge_service.schemas.documents import IngestRequest

DOCS = [{"id": f"d{i}", "text": f"Note {i} covers subject {i % 3} of the runbook."} for i in range(9)]


@pytest.fixture
async def http(http_url: str):
    async with httpx.AsyncClient(base_url=http_url, timeout=60) as client:
        yield client


async def test_profile_routes(http: httpx.AsyncClient, core: Knowledge) -> None:
    await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
    names = [p["name"] for p in (await http.get("/v1/profiles")).json()["profiles"]]
    assert names == ["default"]

    r = await http.put(
        "/v1/profiles/fast", json={"settings": {"top_k": 3, "mode": "sparse"}, "note": "lexical"}
    )
    assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["settings"]["top_k"] == 3
    r = await http.put("/v1/profiles/fast", json={"settings": {"top_k": 4}, "expected_version": 0})
    assert r.status_code == 409 and r.json()["error"]["code"] == "ABORTED"
    r = await http.put("/v1/profiles/fast", json={"settings": {"top_k": 4}, "expected_version": 1})
    assert r.json()["version"] == 2
    for bad, words in [
        ({"settings": {"top_k": 0}}, "top_k"),
        ({"settings": {"speed": 1}}, "speed"),
        ({"settings": {}, "expected_version": -1}, "expected_version"),
    ]:
        r = await http.put("/v1/profiles/fast", json=bad)
        assert r.status_code == 422 and words in r.json()["error"]["message"], r.text
    r = await http.post("/v1/profiles/fast/rollback", json={"version": 1})
    assert (r.json()["version"], r.json()["settings"]["top_k"]) == (3, 3)
    versions = (await http.get("/v1/profiles/fast/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3] and versions[0]["note"] == "lexical"
    assert (await http.get("/v1/profiles/nope")).status_code == 404
    assert (await http.get("/v1/profiles/bad%20name")).status_code == 422

    r = await http.post("/v1/namespaces/kb/search", json={"query": "subject 1", "profile": "fast"})
    assert (r.json()["profile"], r.json()["profile_version"], len(r.json()["results"])) == ("fast", 3, 3)
    r = await http.post("/v1/namespaces/kb/search", json={"query": "subject 1", "overrides": {"top_k": 2}})
    assert (r.json()["profile"], len(r.json()["results"])) == ("default", 2)
    r = await http.put("/v1/namespaces/kb/settings", json={"default_profile": "fast"})
    assert r.json() == {"namespace": "kb", "default_profile": "fast"}
    assert (await http.get("/v1/namespaces/kb/settings")).json()["default_profile"] == "fast"
    r = await http.post("/v1/namespaces/kb/search", json={"query": "subject 1"})
    assert r.json()["profile"] == "fast"
    r = await http.put("/v1/namespaces/kb/settings", json={"default_profile": "ghost"})
    assert r.status_code == 404


async def test_evaluation_route(http: httpx.AsyncClient, core: Knowledge) -> None:
    await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
    queries = {f"q{i}": f"subject {i} of the runbook" for i in range(3)}
    qrels = {f"q{i}": {f"d{j}": 1 for j in range(9) if j % 3 == i} for i in range(3)}
    r = await http.post(
        "/v1/evaluations",
        json={
            "namespace": "kb",
            "queries": queries,
            "qrels": qrels,
            "profiles": [{"name": "default"}, {"settings": {"mode": "dense"}, "label": "dense"}],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["name"] for p in body["profiles"]] == ["default", "dense"]
    assert set(body["delta"]) == {"ndcg@10", "recall@100", "mrr@10"}
    assert {q["query_id"] for q in body["per_query"]} == set(queries)

    # A query set whose outcome is known: "default" returns all nine notes (top_k 10), so it finds
    # every judged note; "nothing" (a score no result reaches) returns none; and q-ghost's only
    # judged document is not in the corpus, so both score 0 on it.
    known = {**queries, "q-ghost": "a subject the runbook never covers"}
    known_qrels = {**qrels, "q-ghost": {"not-ingested": 1}}
    nothing = {"settings": {"score_threshold": 1e9}, "label": "nothing"}
    for profiles, found_at, outcome in [  # outcome: the second profile's wins, losses and ties
        ([{"name": "default"}, nothing], 0, (0, 3, 1)),
        ([nothing, {"name": "default"}], 1, (3, 0, 1)),
    ]:
        r = await http.post(
            "/v1/evaluations",
            json={"namespace": "kb", "queries": known, "qrels": known_qrels, "profiles": profiles},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["wins"], body["losses"], body["ties"]) == outcome, body
        deltas = {q["query_id"]: q["delta"] for q in body["per_query"]}
        assert deltas["q-ghost"] == 0 and all(deltas[q] != 0 for q in queries)
        found, empty = body["profiles"][found_at], body["profiles"][1 - found_at]
        assert found["metrics"]["recall@100"] == pytest.approx(0.75)  # 3 of 4 judged queries
        assert empty["metrics"] == {"ndcg@10": 0, "recall@100": 0, "mrr@10": 0}
        sign = 1 if found_at == 1 else -1  # the delta is the second's metric minus the first's
        assert body["delta"]["ndcg@10"] == pytest.approx(sign * found["metrics"]["ndcg@10"])
    r = await http.post("/v1/evaluations", json={"namespace": "kb", "profiles": [{"name": "default"}]})
    assert r.status_code == 422 and "dataset" in r.json()["error"]["message"]
    both = {
        "namespace": "kb",
        "dataset": "x",
        "queries": queries,
        "qrels": qrels,
        "profiles": [{"name": "default"}],
    }
    r = await http.post("/v1/evaluations", json=both)
    assert r.status_code == 422 and "not both" in r.json()["error"]["message"]


def _struct(data: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(data)
    return s


async def test_profile_rpcs(stub: pb_grpc.KnowledgeServiceStub, core: Knowledge) -> None:
    await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
    p = await stub.PutProfile(
        pb.PutProfileRequest(
            name="g", settings=pb.RetrievalSettings(top_k=2, fusion=pb.Fusion(method=pb.FUSION_METHOD_DBSF))
        )
    )
    assert (p.version, p.settings.top_k, p.settings.fusion.method) == (1, 2, pb.FUSION_METHOD_DBSF)
    assert p.settings.candidates == 100  # unset fields take the defaults
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PutProfile(
            pb.PutProfileRequest(name="g", settings=pb.RetrievalSettings(), expected_version=7)
        )
    assert err.value.code() == grpc.StatusCode.ABORTED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PutProfile(pb.PutProfileRequest(name="g", settings=pb.RetrievalSettings(top_k=0)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "top_k" in err.value.details()
    await stub.RollbackProfile(pb.RollbackProfileRequest(name="g", version=1))
    versions = await stub.ListProfileVersions(pb.ListProfileVersionsRequest(name="g"))
    assert [v.version for v in versions.versions] == [1, 2]
    listed = await stub.ListProfiles(pb.ListProfilesRequest())
    assert [x.name for x in listed.profiles] == ["default", "g"]
    assert (await stub.GetProfile(pb.GetProfileRequest(name="g"))).version == 2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetProfile(pb.GetProfileRequest(name="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    resp = await stub.Search(
        pb.SearchRequest(
            namespace="kb", query="subject 2", profile="g", overrides=_struct({"top_k": 1}), explain=True
        )
    )
    assert (resp.profile, resp.profile_version, len(resp.results)) == ("g", 2, 1)
    s = resp.results[0].scores
    assert s.HasField("dense_rank") and s.HasField("dense_score") and s.fused_rank == 1
    await stub.SetNamespaceSettings(pb.NamespaceSettings(namespace="kb", default_profile="g"))
    got = await stub.GetNamespaceSettings(pb.GetNamespaceSettingsRequest(namespace="kb"))
    assert got.default_profile == "g"
    assert (await stub.Search(pb.SearchRequest(namespace="kb", query="subject 2"))).profile == "g"


async def test_require_eval_refuses_a_worse_profile_with_412(
    http: httpx.AsyncClient, core: Knowledge, tmp_path
) -> None:
    import json

    await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d["id"], "text": d["text"]}) + "\n" for d in DOCS)
    )
    (beir / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": f"subject {i} of the runbook"}) + "\n" for i in range(3))
    )
    (beir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{j % 3}\td{j}\t1\n" for j in range(9))
    )
    core.evaluations.datasets_dir = tmp_path
    gate = {"dataset": "beir", "namespace": "kb", "min_delta": 0.01}
    r = await http.put(
        "/v1/profiles/default", json={"settings": {"score_threshold": 1e9}, "require_eval": gate}
    )
    assert r.status_code == 412, r.text
    err = r.json()["error"]
    assert err["code"] == "FAILED_PRECONDITION" and "nDCG@10" in err["message"] and "0.01" in err["message"]
    assert (await http.get("/v1/profiles/default")).json()["version"] == 1
