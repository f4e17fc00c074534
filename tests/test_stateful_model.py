"""Nothing lost: random sequences of ingest, re-ingest, search, delete and delete-by-filter, run
against the service and against a plain dict of the documents that should exist, must agree after
every step, on both storage backends (Edge; qdrant-client) and through both front doors (HTTP;
gRPC), each a real server over a real core.

After each step: every document the model holds is served with its text, tag and chunk count
(the count's chunks are their sum), every other one is not found, and a search for a document's
own word finds it if it exists and returns only documents that exist, with their current text.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from harness import OneCallAtATime, serve_grpc, serve_http
from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc
from knowledge_service.app import Knowledge
from knowledge_service.core.config import Settings
from knowledge_service.models.base import DenseModel

NS = "model"
WORDS = ["walrus", "quasar", "fjord", "mango", "tundra", "zephyr"]  # one per document id
VERSIONS = ["first", "second", "third"]
IDS = [f"doc-{w}" for w in WORDS]
STEPS = 15  # per sequence in the suite; HYPOTHESIS_PROFILE=deep runs many more sequences


def text_of(doc_id: str, version: int) -> str:
    word = WORDS[IDS.index(doc_id)]
    body = " ".join(
        f"Sentence {k} of the {VERSIONS[version]} {word} version." for k in range(1 + 3 * version)
    )
    return f"{word} {body}"


class Serving:
    """A core on one backend with both doors on free ports, on an event loop of its own thread,
    so that the (synchronous) state machine can call it like any client would."""

    def __init__(self, settings: Settings, dense: DenseModel, backend: str) -> None:
        if backend == "qdrant-client":
            settings = settings.model_copy(update={"qdrant_url": ":memory:"})
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._stack = contextlib.AsyncExitStack()
        self.url, self.target = self._call(self._open(settings, dense, backend))

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=120)

    async def _open(self, settings: Settings, dense: DenseModel, backend: str) -> tuple[str, str]:
        core = await Knowledge.open(settings, dense=dense)
        self._stack.push_async_callback(core.close)
        if backend == "qdrant-client":
            client = OneCallAtATime(core.stores[0].client)  # type: ignore[attr-defined]
            for store in core.stores:
                store.client = client  # type: ignore[attr-defined]
        url = await self._stack.enter_async_context(serve_http(core, settings))
        grpc_serving = await self._stack.enter_async_context(serve_grpc(core, settings))
        self.core = core
        return url, grpc_serving.target

    def close(self) -> None:
        self._call(self._stack.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


class HttpDoor:
    def __init__(self, serving: Serving) -> None:
        self.http = httpx.Client(base_url=serving.url, timeout=60)

    def ingest(self, doc_id: str, text: str, tag: str) -> int:
        doc = {"id": doc_id, "text": text, "metadata": {"tag": tag}}
        resp = self.http.post(f"/v1/namespaces/{NS}/documents", json={"documents": [doc]})
        resp.raise_for_status()
        return int(resp.json()["results"][0]["chunks"])

    def delete(self, ids: list[str], tag: str | None) -> None:
        body: dict[str, Any] = {"ids": ids}
        if tag is not None:
            body["filter"] = {"field": "tag", "eq": tag}
        self.http.post(f"/v1/namespaces/{NS}/documents:delete", json=body).raise_for_status()

    def get(self, doc_id: str) -> dict[str, Any] | None:
        resp = self.http.get(f"/v1/namespaces/{NS}/documents/{doc_id}")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        out = resp.json()
        return {"text": out["text"], "tag": out["metadata"].get("tag"), "chunks": out["chunks"]}

    def count(self) -> tuple[int, int]:
        out = self.http.get(f"/v1/namespaces/{NS}/count").raise_for_status().json()
        return int(out["documents"]), int(out["chunks"])

    def search(self, query: str) -> list[tuple[str, str]]:
        body = {"query": query, "mode": "sparse", "top_k": 10}
        out = self.http.post(f"/v1/namespaces/{NS}/search", json=body).raise_for_status().json()
        return [(h["doc_id"], h["text"]) for h in out["results"]]

    def close(self) -> None:
        self.http.close()


class GrpcDoor:
    def __init__(self, serving: Serving) -> None:
        self.channel = grpc.insecure_channel(serving.target)
        self.stub = pb_grpc.KnowledgeServiceStub(self.channel)

    def ingest(self, doc_id: str, text: str, tag: str) -> int:
        doc = pb.Document(id=doc_id, text=text)
        doc.metadata.update({"tag": tag})
        resp = self.stub.Ingest(pb.IngestRequest(namespace=NS, documents=[doc]), timeout=60)
        return int(resp.results[0].chunks)

    def delete(self, ids: list[str], tag: str | None) -> None:
        req = pb.DeleteDocumentsRequest(namespace=NS, ids=ids)
        if tag is not None:
            req.filter.update({"field": "tag", "eq": tag})
        self.stub.DeleteDocuments(req, timeout=60)

    def get(self, doc_id: str) -> dict[str, Any] | None:
        try:
            out = self.stub.GetDocument(pb.GetDocumentRequest(namespace=NS, doc_id=doc_id), timeout=60)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        metadata = json_format.MessageToDict(out.metadata)
        return {"text": out.text, "tag": metadata.get("tag"), "chunks": out.chunks}

    def count(self) -> tuple[int, int]:
        out = self.stub.CountDocuments(pb.CountDocumentsRequest(namespace=NS), timeout=60)
        return int(out.documents), int(out.chunks)

    def search(self, query: str) -> list[tuple[str, str]]:
        req = pb.SearchRequest(namespace=NS, query=query, mode=pb.SEARCH_MODE_SPARSE, top_k=10)
        return [(h.doc_id, h.text) for h in self.stub.Search(req, timeout=60).results]

    def close(self) -> None:
        self.channel.close()


class ServiceAgainstModel(RuleBasedStateMachine):
    door: Any  # set per backend and door by the test

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, dict[str, Any]] = {}  # doc id -> text, tag, chunks
        self.door.delete(IDS, None)  # each sequence starts from an empty namespace

    @rule(doc_id=st.sampled_from(IDS), version=st.integers(0, len(VERSIONS) - 1), tag=st.sampled_from("ab"))
    def ingest(self, doc_id: str, version: int, tag: str) -> None:
        """A new document, or a re-ingest of one (changed or not)."""
        text = text_of(doc_id, version)
        chunks = self.door.ingest(doc_id, text, tag)
        self.model[doc_id] = {"text": text, "tag": tag, "chunks": chunks}

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=3, unique=True))
        self.door.delete(ids, None)
        for doc_id in ids:
            self.model.pop(doc_id, None)

    @rule(tag=st.sampled_from("ab"))
    def delete_by_filter(self, tag: str) -> None:
        self.door.delete([], tag)
        self.model = {k: v for k, v in self.model.items() if v["tag"] != tag}

    @rule(doc_id=st.sampled_from(IDS))
    def search(self, doc_id: str) -> None:
        hits = self.door.search(WORDS[IDS.index(doc_id)])
        for hit_id, text in hits:
            assert hit_id in self.model, f"search returned {hit_id}, which should not exist"
            assert text in self.model[hit_id]["text"], f"search returned a stale chunk of {hit_id}"
        if doc_id in self.model:
            assert doc_id in [h for h, _ in hits], f"{doc_id} exists but its own word does not find it"

    @invariant()
    def documents_and_counts_match(self) -> None:
        for doc_id in IDS:
            served = self.door.get(doc_id)
            assert served == self.model.get(doc_id), doc_id
        assert self.door.count() == (len(self.model), sum(d["chunks"] for d in self.model.values()))


@pytest.fixture(scope="module", params=["edge", "qdrant-client"])
def serving(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, dense_encoder: DenseModel
) -> Iterator[Serving]:
    data = tmp_path_factory.mktemp(f"stateful-{request.param}")
    settings = Settings(data_dir=Path(data) / "data", http_port=0, grpc_port=0, optimize_idle_s=0)
    s = Serving(settings, dense_encoder, request.param)
    try:
        yield s
    finally:
        s.close()


@pytest.mark.parametrize("door", [HttpDoor, GrpcDoor], ids=["http", "grpc"])
def test_the_service_agrees_with_a_reference_model(serving: Serving, door: type) -> None:
    client = door(serving)
    try:
        machine = type("Machine", (ServiceAgainstModel,), {"door": client})
        run_state_machine_as_test(
            machine,
            settings=hypothesis_settings(
                max_examples=max(10, hypothesis_settings.default.max_examples // 10),
                stateful_step_count=STEPS,
                deadline=None,
            ),
        )
    finally:
        client.close()
