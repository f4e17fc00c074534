"""The gRPC transport's translation (``_wire``): json_format, bridged to the HTTP API's shapes by type.

Messages are filled generically from their descriptors, so a field added to the proto is covered
here without a test edit, and a model that lacks it fails ``test_models_name_the_messages_fields``.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from pydantic import BaseModel

import knowledge_client as kc
from knowledge_client import _requests as rq
from knowledge_client._wire import SERVICE, request_type, to_body, to_message
from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb

BIG = 2**53 + 1  # an int64 that a double cannot hold: printed as a string

# Each response message and the model that reads it (nested ones included).
MODELS: list[tuple[type[Message], type[BaseModel]]] = [
    (pb.SearchResponse, kc.SearchResponse),
    (pb.SearchHit, kc.SearchHit),
    (pb.StageScores, kc.StageScores),
    (pb.IngestResponse, kc.IngestResponse),
    (pb.IngestResult, kc.IngestResult),
    (pb.DeleteDocumentsResponse, kc.DeleteResponse),
    (pb.CountDocumentsResponse, kc.CountResponse),
    (pb.GetDocumentResponse, kc.StoredDocument),
    (pb.Profile, kc.Profile),
    (pb.RetrievalSettings, kc.RetrievalSettings),
    (pb.Fusion, kc.Fusion),
    (pb.NamespaceSettings, kc.NamespaceSettings),
    (pb.RequireEval, kc.RequireEval),
    (pb.Document, kc.Document),
]


def _scalar(field: FieldDescriptor) -> Any:
    if field.enum_type is not None:
        return field.enum_type.values[-1].number  # the last value: never the zero one
    return {
        FieldDescriptor.CPPTYPE_STRING: f"{field.name}-value",
        FieldDescriptor.CPPTYPE_BOOL: True,
        FieldDescriptor.CPPTYPE_DOUBLE: 1.5,
        FieldDescriptor.CPPTYPE_FLOAT: 1.5,
        FieldDescriptor.CPPTYPE_INT32: 7,
        FieldDescriptor.CPPTYPE_INT64: BIG,
    }[field.cpp_type]


def _fill(msg: Message) -> Message:
    """Every field of ``msg`` set to a value other than its default, recursively."""
    for field in msg.DESCRIPTOR.fields:
        target = getattr(msg, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is not None:
                _fill(target["key"])
            else:
                target["key"] = _scalar(value_field)
        elif field.message_type is not None and field.message_type.full_name == "google.protobuf.Struct":
            target.update({"year": 2020, "tags": ["a", 1], "score": 0.5})
        elif field.message_type is not None:
            _fill(target.add() if field.is_repeated else target)
        elif field.is_repeated:
            target.append(_scalar(field))
        else:
            setattr(msg, field.name, _scalar(field))
    return msg


def _names(desc: Descriptor, data: dict[str, Any]) -> None:
    """Every field of ``desc`` is in ``data``, and nested messages likewise."""
    assert set(data) == set(desc.fields_by_name), desc.full_name
    for field in desc.fields:
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        if field.message_type.full_name != "google.protobuf.Struct":
            for item in data[field.name] if field.is_repeated else [data[field.name]]:
                _names(field.message_type, item)


def test_every_rpc_has_its_request_type():
    for method in SERVICE.methods:
        assert request_type(method.name) is getattr(pb, method.input_type.name)


@pytest.mark.parametrize(("message", "model"), MODELS, ids=[m.__name__ for m, _ in MODELS])
def test_models_name_the_messages_fields(message: type[Message], model: type[BaseModel]):
    """The one edit a new proto field needs: its model field (json_format carries it)."""
    assert set(model.model_fields) == set(message.DESCRIPTOR.fields_by_name)


@pytest.mark.parametrize(("message", "model"), MODELS, ids=[m.__name__ for m, _ in MODELS])
def test_every_field_reaches_the_model(message: type[Message], model: type[BaseModel]):
    body = to_body(_fill(message()))
    _names(message.DESCRIPTOR, body)
    parsed = model.model_validate(body)
    assert set(parsed.model_dump(exclude_defaults=True)) == set(model.model_fields)


def test_a_filled_search_response_reads_as_the_http_api_says_it():
    body = to_body(_fill(pb.SearchResponse()))
    hit = body["results"][0]
    assert (body["rerank"], hit["scores"]["dense_rank"], hit["title"]) == ("skipped", 7, "title-value")
    assert hit["metadata"] == {"year": 2020, "tags": ["a", 1], "score": 0.5}
    assert isinstance(hit["metadata"]["year"], int) and isinstance(hit["metadata"]["tags"][1], int)
    assert body["index_version"] == str(BIG) and body["timings_ms"] == {"key": 1.5}
    resp = kc.SearchResponse.model_validate(body)
    assert (resp.index_version, resp.profile_version) == (BIG, BIG)


def test_int64_within_a_double_is_a_number():
    assert to_body(pb.CountDocumentsResponse(documents=3, chunks=2**40, index_version=0)) == {
        "documents": 3,
        "chunks": 2**40,
        "index_version": 0,
    }


def test_defaults_are_printed_and_unset_optionals_left_out():
    assert to_body(pb.IngestResponse(results=[pb.IngestResult(id="a", status=pb.INGEST_STATUS_CREATED)])) == {
        "results": [{"id": "a", "status": "created", "chunks": 0}],
        "index_version": 0,
    }
    assert to_body(pb.SearchResponse()) == {
        "results": [],
        "cache_hit": False,
        "degraded": [],
        "index_version": 0,
        "timings_ms": {},
        "profile": "",
        "profile_version": 0,
    }
    assert kc.SearchResponse.model_validate(to_body(pb.SearchResponse())).rerank == "not_configured"


def test_unspecified_and_unknown_enums_are_left_out():
    settings = pb.RetrievalSettings(mode=pb.SEARCH_MODE_UNSPECIFIED, fusion=pb.Fusion(method=99))
    assert to_body(settings) == {"fusion": {"weights": []}}
    read = kc.RetrievalSettings.model_validate(to_body(settings))
    assert (read.mode, read.fusion) == (None, kc.Fusion(method="rrf", weights=None))


def test_requests_take_the_http_bodies():
    body = rq.search(
        "ns",
        "q",
        top_k=3,
        filter={"field": "year", "range": {"lt": 2000}},
        mode="dense",
        fusion=kc.Fusion(k=10, weights=[1, 0.5]),
        candidates=None,
        rerank=False,
        explain=True,
        profile="p",
        overrides={"mode": "sparse", "rerank_depth": 5},
    ).body
    msg = to_message("Search", body)
    rest = pb.SearchRequest()
    rest.CopyFrom(msg)
    rest.ClearField("filter")
    rest.ClearField("overrides")
    assert rest == pb.SearchRequest(
        namespace="ns",
        query="q",
        top_k=3,
        mode=pb.SEARCH_MODE_DENSE,
        fusion=pb.Fusion(method=pb.FUSION_METHOD_RRF, k=10, weights=[1, 0.5]),
        rerank=False,
        explain=True,
        profile="p",
    )
    assert json_format.MessageToDict(msg.filter) == {"field": "year", "range": {"lt": 2000.0}}
    assert json_format.MessageToDict(msg.overrides) == {"mode": "sparse", "rerank_depth": 5.0}
    assert not msg.HasField("candidates") and msg.HasField("rerank")

    put = to_message("PutProfile", rq.put_profile("p", {"mode": "hybrid", "top_k": 2}, 4, None, "n").body)
    assert put == pb.PutProfileRequest(
        name="p",
        settings=pb.RetrievalSettings(mode=pb.SEARCH_MODE_HYBRID, top_k=2),
        expected_version=4,
        note="n",
    )


@pytest.mark.parametrize(
    ("method", "body", "field", "words"),
    [
        (
            "Search",
            {"namespace": "n", "query": "q", "mode": "fuzzy"},
            "mode",
            "['hybrid', 'dense', 'sparse']",
        ),
        ("Search", {"fusion": {"method": "unspecified"}}, "fusion.method", "['rrf', 'dbsf']"),
        ("Ingest", {"documents": [{"id": "a", "metadata": {1}}]}, "documents[0].metadata", "Struct"),
        ("Ingest", {"documents": [{"id": "a", "lang": "en"}]}, "documents[0]", 'no field named "lang"'),
        ("PutProfile", {"settings": {"colour": "red"}}, "settings", 'no field named "colour"'),
        ("PutProfile", {"settings": {"top_k": "x"}}, "settings.top_k", "invalid literal"),
    ],
)
def test_a_body_that_does_not_fit_is_invalid_request(method: str, body: dict, field: str, words: str):
    with pytest.raises(kc.InvalidRequest) as err:
        to_message(method, body)
    assert (
        err.value.field == field and err.value.detail.startswith(f"{field}: ") and words in err.value.detail
    )
