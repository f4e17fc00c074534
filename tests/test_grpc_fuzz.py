"""Every RPC of the gRPC door fuzzed with random and boundary messages (Hypothesis), built from the
proto descriptors themselves: empty, huge and odd strings, integer and float extremes (NaN and
infinities too), unknown enum numbers, repeated fields, JSON structs of any shape. Against a real
`knowledge serve` child, no message may end in UNKNOWN, INTERNAL, UNIMPLEMENTED or UNAVAILABLE,
every refusal says why, and the server still answers afterwards."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as D
from google.protobuf import message, message_factory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import ServedProcess, served_child
from knowledge_client.proto.knowledge.v1 import knowledge_pb2 as pb
from knowledge_client.proto.knowledge.v1 import knowledge_pb2_grpc as pb_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["KnowledgeService"]
REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.OUT_OF_RANGE,
}
EXAMPLES = 25  # per RPC in the suite; more under HYPOTHESIS_PROFILE=deep

_strings = st.one_of(
    st.sampled_from(
        ["", "kb", "default", "d0", " ", "a" * 64, "a" * 65, "x" * 5_000, "\x00", "é✓😀", "../etc"]
    ),
    st.text(max_size=40),
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.sampled_from([math.nan, math.inf, -math.inf])  # a Struct carries them; JSON cannot
    | st.floats()
    | st.integers(-(2**60), 2**60)
    | _strings,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_strings, inner, max_size=3),
    max_leaves=10,
)
_INT_BOUNDS = {
    D.FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    D.FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    D.FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    D.FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    D.FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    D.FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
}


def _scalar(field: D.FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t in _INT_BOUNDS:
        lo, hi = _INT_BOUNDS[t]
        return st.one_of(
            st.sampled_from([lo, -1, 0, 1, 3, 1000, hi] if lo < 0 else [0, 1, 3, 1000, hi]),
            st.integers(lo, hi),
        )
    if t in (D.FieldDescriptor.TYPE_DOUBLE, D.FieldDescriptor.TYPE_FLOAT):
        return st.one_of(
            st.sampled_from([0.0, -1.0, math.nan, math.inf, -math.inf, 1e308]), st.floats(width=32)
        )
    if t == D.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == D.FieldDescriptor.TYPE_STRING:
        return _strings
    if t == D.FieldDescriptor.TYPE_BYTES:
        return st.one_of(
            st.binary(max_size=64), st.sampled_from([b"", b"%PDF-1.7\n", b"\xff" * 10_000, b"PK\x03\x04"])
        )
    if t == D.FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(-5, 99))  # open enums: unknown numbers
    raise AssertionError(f"no strategy for {field.full_name}")


@st.composite
def messages(draw: st.DrawFn, desc: D.Descriptor, depth: int = 0) -> message.Message:
    out = message_factory.GetMessageClass(desc)()
    if desc.full_name == "google.protobuf.Struct":
        out.update(draw(st.dictionaries(_strings, _json, max_size=4)))  # type: ignore[attr-defined]
        return out
    for field in desc.fields:
        if not draw(st.booleans()):  # about half the fields stay unset
            continue
        is_message = field.type == D.FieldDescriptor.TYPE_MESSAGE
        if is_message and depth >= 3:
            continue
        one = messages(field.message_type, depth + 1) if is_message else _scalar(field)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_f, value_f = (
                field.message_type.fields_by_name["key"],
                field.message_type.fields_by_name["value"],
            )
            value = messages(value_f.message_type, depth + 1) if value_f.message_type else _scalar(value_f)
            for k, v in draw(st.dictionaries(_scalar(key_f), value, max_size=3)).items():
                if value_f.message_type:
                    getattr(out, field.name)[k].CopyFrom(v)
                else:
                    getattr(out, field.name)[k] = v
        elif field.is_repeated:
            getattr(out, field.name).extend(draw(st.lists(one, max_size=3)))
        elif is_message:
            getattr(out, field.name).CopyFrom(draw(one))
        else:
            setattr(out, field.name, draw(one))
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProcess]:
    with served_child(tmp_path_factory.mktemp("fuzzed-grpc")) as proc:
        yield proc


@pytest.mark.parametrize("rpc", [m.name for m in SERVICE.methods])
def test_no_message_crashes_an_rpc_and_every_refusal_says_why(served: ServedProcess, rpc: str) -> None:
    method = SERVICE.methods_by_name[rpc]
    with grpc.insecure_channel(f"127.0.0.1:{served.env['KNOWLEDGE_GRPC_PORT']}") as channel:
        call = getattr(pb_grpc.KnowledgeServiceStub(channel), rpc)

        @settings(
            max_examples=max(EXAMPLES, settings.default.max_examples // 4),
            suppress_health_check=list(HealthCheck),
        )
        @given(
            st.lists(messages(method.input_type), min_size=0, max_size=3)
            if method.client_streaming
            else messages(method.input_type)
        )
        def check(request: Any) -> None:
            try:
                call(iter(request) if method.client_streaming else request, timeout=30)
            except grpc.RpcError as err:
                sent = [str(r) for r in request] if method.client_streaming else str(request)
                log = [line for line in served.output.splitlines() if "failed" in line][-3:]
                assert err.code() in REFUSALS, (
                    f"{rpc}: {err.code()} {err.details()} for {sent}; server: {log}"
                )
                assert err.details(), f"{rpc}: {err.code()} without a message"

        check()
        pb_grpc.KnowledgeServiceStub(channel).ListProfiles(
            pb.ListProfilesRequest(), timeout=30
        )  # still serving
