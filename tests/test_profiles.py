"""Profiles: versioned settings, persistence, replicas that follow changes, and search under them."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from harness import eventually
from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.core.errors import Conflict, InvalidArgument, NotFound
from knowledge_service.models.base import DenseModel
from knowledge_service.pipelines.profiles.registry import CHANNEL
from knowledge_service.schemas.documents import IngestRequest
from knowledge_service.schemas.profiles import PutProfileRequest
from knowledge_service.schemas.search import SearchRequest

DOCS = [
    {"id": f"d{i}", "text": f"Document {i} explains topic {i % 4} of hybrid retrieval."} for i in range(12)
]


async def put(core: Knowledge, name: str, **kw):
    return await core.profiles.put(PutProfileRequest(name=name, **kw))


async def test_versions_conflicts_and_rollback(core: Knowledge) -> None:
    default = core.registry.get("default")
    assert (default.version, default.settings.top_k) == (1, 10)
    v1 = await put(core, "tuned", settings={"top_k": 3, "fusion": {"method": "dbsf"}})
    assert (v1.version, v1.settings.top_k, v1.settings.fusion.method) == (1, 3, "dbsf")
    v2 = await put(core, "tuned", settings={"top_k": 5}, expected_version=1, note="wider")
    assert (v2.version, v2.settings.top_k, v2.settings.fusion.method) == (2, 5, "dbsf")  # the default
    with pytest.raises(Conflict, match="version 2, not 1"):
        await put(core, "tuned", settings={"top_k": 7}, expected_version=1)
    with pytest.raises(InvalidArgument, match="top_k"):
        await put(core, "tuned", settings={"top_k": 1000})
    with pytest.raises(InvalidArgument, match="candidates"):
        await put(core, "tuned", settings={"top_k": 50, "candidates": 20})
    back = await core.registry.rollback("tuned", 1)
    assert (back.version, back.settings.top_k, back.note) == (3, 3, "rollback to version 1")
    assert [p.version for p in await core.registry.versions("tuned")] == [1, 2, 3]
    with pytest.raises(NotFound):
        await core.registry.rollback("tuned", 9)
    with pytest.raises(NotFound, match="nope"):
        core.registry.get("nope")


async def test_profiles_survive_restart(settings: Settings, dense_encoder: DenseModel) -> None:
    core = await Knowledge.open(settings, dense=dense_encoder)
    await put(core, "kept", settings={"mode": "sparse"})
    await core.registry.set_namespace_default("kb", "kept")
    await core.close()
    again = await Knowledge.open(settings, dense=dense_encoder)
    try:
        assert again.registry.get("kept").settings.mode == "sparse"
        assert again.registry.namespace_default("kb") == "kept"
        assert again.registry.get("default").version == 1  # not re-created
    finally:
        await again.close()


async def subscribed(replica: Knowledge, redis_url: str) -> None:
    """Wait until ``replica`` listens for published profile changes: publish on the channel until
    it reacts (a refresh) to one of them."""
    import redis.asyncio as redis

    registry = replica.registry
    refresh, heard = registry.refresh, asyncio.Event()

    async def noting(*args: Any, **kwargs: Any) -> Any:
        heard.set()
        return await refresh(*args, **kwargs)

    registry.refresh = noting  # type: ignore[method-assign]
    try:
        async with redis.Redis.from_url(redis_url) as r:

            async def hears_a_probe() -> bool:
                await r.publish(CHANNEL, "probe")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(heard.wait(), timeout=0.1)
                return heard.is_set()

            await eventually(hears_a_probe, timeout=10, interval=0, what="the replica subscribed")
    finally:
        registry.refresh = refresh  # type: ignore[method-assign]


@pytest.mark.parametrize("via", ["polling", "redis"])
async def test_a_replica_sharing_the_store_sees_a_change_within_two_seconds(
    via: str, settings: Settings, dense_encoder: DenseModel, redis_url: str
) -> None:
    if via == "redis":  # polling slower than the bound: only the published change can make it
        settings = settings.model_copy(update={"redis_url": redis_url, "profile_poll_s": 30.0})
    a = await Knowledge.open(settings, dense=dense_encoder)
    b = await Knowledge.open(settings, dense=dense_encoder, stores=a.stores)
    try:
        if via == "redis":
            await subscribed(b, redis_url)
        name = f"shared-{via}"
        changed = await put(a, name, settings={"top_k": 4})

        def b_sees_it() -> bool:
            return b.registry.find(name) is not None and b.registry.get(name).version == changed.version

        await eventually(b_sees_it, timeout=2.0, what=f"replica b sees {name} v{changed.version}")
        assert b.registry.get(name).settings.top_k == 4
    finally:
        await b.close()
        await a.close()


async def test_search_uses_profile_overrides_and_namespace_default(core: Knowledge) -> None:
    await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
    r = await core.searcher.search(SearchRequest(namespace="kb", query="topic 2"))
    assert (r.profile, r.profile_version, len(r.results)) == ("default", 1, 10)
    await put(core, "narrow", settings={"top_k": 3, "mode": "sparse"})
    r = await core.searcher.search(
        SearchRequest(namespace="kb", query="topic 2", profile="narrow", explain=True)
    )
    assert (r.profile, r.profile_version, len(r.results)) == ("narrow", 1, 3)
    assert all(h.scores.dense_rank is None and h.scores.sparse_rank for h in r.results)
    r = await core.searcher.search(
        SearchRequest(namespace="kb", query="topic 2", profile="narrow", overrides={"top_k": 2})
    )
    assert len(r.results) == 2
    r = await core.searcher.search(SearchRequest(namespace="kb", query="topic 2", profile="narrow", top_k=4))
    assert len(r.results) == 4  # shorthand fields are overrides too
    with pytest.raises(InvalidArgument, match="top_k"):
        await core.searcher.search(SearchRequest(namespace="kb", query="q", overrides={"top_k": 500}))
    with pytest.raises(ValidationError, match="unknown fields"):
        SearchRequest(namespace="kb", query="q", overrides={"temperature": 1})
    with pytest.raises(NotFound, match="missing"):
        await core.searcher.search(SearchRequest(namespace="kb", query="q", profile="missing"))

    await core.registry.set_namespace_default("kb", "narrow")
    r = await core.searcher.search(SearchRequest(namespace="kb", query="topic 2"))
    assert (r.profile, len(r.results)) == ("narrow", 3)
    other = await core.searcher.search(SearchRequest(namespace="other", query="topic 2"))
    assert other.profile == "default"


async def test_a_profile_change_never_serves_results_cached_under_the_old_one(core: Knowledge) -> None:
    await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
    await put(core, "p", settings={"top_k": 5})
    first = await core.searcher.search(SearchRequest(namespace="kb", query="topic 1", profile="p"))
    again = await core.searcher.search(SearchRequest(namespace="kb", query="topic 1", profile="p"))
    assert (first.cache_hit, again.cache_hit) == (False, True)
    await put(core, "p", settings={"top_k": 5})  # same settings, new version
    after = await core.searcher.search(SearchRequest(namespace="kb", query="topic 1", profile="p"))
    assert (after.cache_hit, after.profile_version) == (False, 2)


async def test_threshold_and_stitching(core: Knowledge) -> None:
    sentences = " ".join(f"Step {i}: rotate the signing key number {i} and record it." for i in range(80))
    resp = await core.documents.ingest(
        IngestRequest(namespace="kb", documents=[{"id": "keys", "text": sentences}])
    )
    n = resp.results[0].chunks
    assert n >= 3
    plain = await core.searcher.search(
        SearchRequest(namespace="kb", query="rotate the signing key", top_k=n, candidates=n, rerank=False)
    )
    stitched = await core.searcher.search(
        SearchRequest(
            namespace="kb",
            query="rotate the signing key",
            overrides={"top_k": n, "candidates": n, "stitch": True},
        )
    )
    assert len(plain.results) == n and len(stitched.results) == 1
    whole = stitched.results[0]
    assert whole.chunk_id == f"keys#0-{n - 1}"
    assert whole.text.count("Step 40:") == 1  # the chunk overlap is written once
    assert all(f"Step {i}:" in whole.text for i in range(80))

    cut = sorted(h.score for h in plain.results)[n // 2]
    above = await core.searcher.search(
        SearchRequest(
            namespace="kb",
            query="rotate the signing key",
            overrides={"top_k": n, "candidates": n, "score_threshold": cut},
        )
    )
    assert 0 < len(above.results) < n and all(h.score >= cut for h in above.results)


async def test_evaluation_compares_profiles_and_gates_changes(core: Knowledge, tmp_path: Path) -> None:
    from knowledge_service.core.errors import PreconditionFailed
    from knowledge_service.schemas.evaluations import EvaluationRequest
    from knowledge_service.schemas.profiles import RequireEval

    await core.documents.ingest(IngestRequest(namespace="kb", documents=DOCS))
    queries = {f"q{i}": f"topic {i} of hybrid retrieval" for i in range(4)}
    qrels = {f"q{i}": {f"d{j}": 1 for j in range(12) if j % 4 == i} for i in range(4)}
    cmp = await core.evaluations.evaluate(
        EvaluationRequest(
            namespace="kb",
            queries=queries,
            qrels=qrels,
            profiles=[{"name": "default"}, {"settings": {"score_threshold": 1e9}}],
        )
    )
    a, b = cmp.profiles
    assert a.metrics["ndcg@10"] > 0.3 and b.metrics["ndcg@10"] == 0
    assert cmp.delta["ndcg@10"] == pytest.approx(-a.metrics["ndcg@10"])
    assert cmp.losses == 4 and cmp.wins == 0 and a.latency["p50_ms"] > 0

    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(
        "".join(f'{{"_id": "{d["id"]}", "text": "{d["text"]}"}}\n' for d in DOCS)
    )
    (beir / "queries.jsonl").write_text(
        "".join(f'{{"_id": "{q}", "text": "{t}"}}\n' for q, t in queries.items())
    )
    (beir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, rel in qrels.items() for d in rel)
    )
    core.evaluations.datasets_dir = tmp_path
    gate = RequireEval(dataset="beir", namespace="kb", min_delta=0.01)
    with pytest.raises(PreconditionFailed, match="loses more than min_delta"):
        await put(core, "default", settings={"score_threshold": 1e9}, require_eval=gate)
    assert core.registry.get("default").version == 1  # not activated
    ok = await put(
        core,
        "default",
        settings={"fusion": {"method": "dbsf"}},
        require_eval=gate.model_copy(update={"min_delta": 1.0}),
    )
    assert ok.version == 2
    uploaded = RequireEval(queries=queries, qrels=qrels, namespace="kb", min_delta=0.01)
    with pytest.raises(PreconditionFailed, match="loses more than min_delta"):
        await put(core, "default", settings={"score_threshold": 1e9}, require_eval=uploaded)
    assert core.registry.get("default").version == 2


async def test_evaluation_datasets_are_confined_to_a_folder(core: Knowledge, tmp_path: Path) -> None:
    from knowledge_service.schemas.evaluations import EvaluationRequest

    outside = EvaluationRequest(
        namespace="kb", dataset=str(tmp_path / "elsewhere"), profiles=[{"name": "default"}]
    )
    with pytest.raises(InvalidArgument, match="KNOWLEDGE_EVAL_DATASETS_DIR"):
        await core.evaluations.evaluate(outside)  # no root: no dataset is read at all
    core.evaluations.datasets_dir = tmp_path / "allowed"
    (tmp_path / "allowed").mkdir()
    with pytest.raises(InvalidArgument, match="must name a folder inside"):
        await core.evaluations.evaluate(outside)
    sneaky = outside.model_copy(update={"dataset": str(tmp_path / "allowed" / ".." / "elsewhere")})
    with pytest.raises(InvalidArgument, match="must name a folder inside"):
        await core.evaluations.evaluate(sneaky)
    inside = outside.model_copy(update={"dataset": "beir"})
    with pytest.raises(InvalidArgument, match="^dataset 'beir': folder not found$"):
        await core.evaluations.evaluate(inside)  # allowed, and then it simply is not there


async def test_two_replicas_writing_at_once_never_lose_or_share_a_version(
    settings: Settings, dense_encoder: DenseModel
) -> None:
    a = await Knowledge.open(settings, dense=dense_encoder)
    b = await Knowledge.open(settings, dense=dense_encoder, stores=a.stores)
    try:
        await put(a, "race", settings={"top_k": 3})
        await b.registry.refresh(force=True)
        both = await asyncio.gather(
            put(a, "race", settings={"top_k": 4}, expected_version=1),
            put(b, "race", settings={"top_k": 5}, expected_version=1),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in both) == ["Conflict", "ProfileOut"]  # one wins version 2
        free = await asyncio.gather(
            put(a, "race", settings={"top_k": 6}), put(b, "race", settings={"top_k": 7})
        )
        assert sorted(p.version for p in free) == [3, 4]  # both land, on distinct versions
        assert [v.version for v in await a.registry.versions("race")] == [1, 2, 3, 4]
        for core in (a, b):
            await core.registry.refresh(force=True)
            assert core.registry.get("race").version == 4
    finally:
        await b.close()
        await a.close()


async def test_a_version_left_without_its_head_is_recovered(core: Knowledge) -> None:
    await put(core, "p", settings={"top_k": 3})
    # A writer claimed version 2, then died before moving the head.
    orphan = {
        "kind": "profile_version",
        "name": "p",
        "version": 2,
        "settings": {"top_k": 9},
        "created_at": 0.0,
        "note": None,
        "writer": "dead",
    }
    core.stores[1].insert_new("profile/p/v2", orphan)
    with pytest.raises(Conflict):
        await put(core, "p", settings={"top_k": 4}, expected_version=1)
    assert core.registry.get("p").version == 2  # the head caught up, so a re-read and retry works
    assert (await put(core, "p", settings={"top_k": 4}, expected_version=2)).version == 3


async def test_a_change_made_while_the_gate_evaluates_is_not_overwritten(core: Knowledge) -> None:
    await put(core, "gated", settings={"top_k": 3})

    async def slow_gate(candidate) -> None:  # meanwhile, someone else changes the profile
        await put(core, "gated", settings={"top_k": 7}, note="landed during the evaluation")

    with pytest.raises(Conflict, match="changed concurrently"):
        await core.registry.put("gated", {"top_k": 5}, check=slow_gate)
    head = core.registry.get("gated")
    assert (head.version, head.settings.top_k) == (2, 7)  # the gate's candidate did not land on top
