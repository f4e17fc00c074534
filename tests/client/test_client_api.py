"""The public surface and the error tables, without a service."""

from __future__ import annotations

import ast
import inspect
import textwrap
import time
import tomllib
from pathlib import Path

import grpc
import httpx
import pytest

import knowledge_client as kc
from knowledge_client._exceptions import STATUS_TABLE, from_grpc, from_http, parse_retry_after
from knowledge_client._http import _deadline
from knowledge_client._retry import TRANSIENT

PUBLIC = [
    "AsyncGrpcTransport",
    "AsyncHttpTransport",
    "AsyncKnowledgeClient",
    "AsyncTransport",
    "Conflict",
    "CountResponse",
    "DeadlineExceeded",
    "DeleteResponse",
    "Document",
    "Fusion",
    "GrpcTransport",
    "HttpTransport",
    "IngestResponse",
    "IngestResult",
    "InvalidRequest",
    "KnowledgeClient",
    "KnowledgeError",
    "NamespaceSettings",
    "NotFound",
    "Overloaded",
    "PreconditionFailed",
    "Profile",
    "RequireEval",
    "RetrievalSettings",
    "RetryPolicy",
    "SearchHit",
    "SearchResponse",
    "StageScores",
    "StoredDocument",
    "Transport",
    "Unauthorized",
    "Unavailable",
    "__version__",
]


def test_public_api_is_pinned():
    assert sorted(kc.__all__) == sorted(PUBLIC)
    for name in (n for n in PUBLIC if n != "__version__"):  # a class of the client's, by its own name
        obj = getattr(kc, name)
        assert isinstance(obj, type) and obj.__name__ == name, name
        assert obj.__module__.startswith("knowledge_client._"), (name, obj.__module__)
    pyproject = tomllib.loads((Path(__file__).parents[2] / "client" / "pyproject.toml").read_text())
    assert kc.__version__ == pyproject["project"]["version"]
    errors = [
        kc.InvalidRequest,
        kc.Unauthorized,
        kc.NotFound,
        kc.Conflict,
        kc.PreconditionFailed,
        kc.Overloaded,
        kc.Unavailable,
        kc.DeadlineExceeded,
    ]
    assert all(issubclass(e, kc.KnowledgeError) for e in errors)
    assert isinstance(kc.GrpcTransport("127.0.0.1:1"), kc.Transport)
    assert isinstance(kc.AsyncHttpTransport("127.0.0.1:1"), kc.AsyncTransport)


CALLS = [
    "count",
    "delete",
    "get",
    "get_namespace_settings",
    "get_profile",
    "ingest",
    "ingest_stream",
    "list_profiles",
    "profile_versions",
    "put_profile",
    "rollback_profile",
    "search",
    "set_namespace_settings",
]


def _public_calls(cls: type) -> list[str]:
    return sorted(n for n, _ in inspect.getmembers(cls, inspect.isfunction) if n[0] != "_" and n != "close")


def _shape(fn: object, skip: str = "") -> list[tuple[str, object, object, object]]:
    """A signature as (name, kind, default, annotation), the annotation of ``skip`` left out."""
    return [
        (p.name, p.kind, p.default, None if p.name == skip else p.annotation)
        for p in inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
    ]


def test_both_clients_offer_the_same_calls():
    assert _public_calls(kc.KnowledgeClient) == _public_calls(kc.AsyncKnowledgeClient) == CALLS
    for name in [*CALLS, "close"]:
        blocking, awaited = getattr(kc.KnowledgeClient, name), getattr(kc.AsyncKnowledgeClient, name)
        assert inspect.iscoroutinefunction(awaited) and not inspect.iscoroutinefunction(blocking), name
        assert inspect.signature(blocking).return_annotation == inspect.signature(awaited).return_annotation
        # The async ingest_stream also takes an async iterable of batches.
        skip = "batches" if name == "ingest_stream" else ""
        assert _shape(blocking, skip) == _shape(awaited, skip), name
    # The constructors differ only in the transport object each accepts.
    assert _shape(kc.KnowledgeClient, "transport") == _shape(kc.AsyncKnowledgeClient, "transport")


@pytest.mark.parametrize("cls", [kc.KnowledgeClient, kc.AsyncKnowledgeClient])
def test_each_call_is_one_line_that_builds_and_runs_it(cls: type):
    """``return self._run(rq.<name>(<every argument>), timeout)``: no logic lives in a flavour."""
    for name in CALLS:
        fn = getattr(cls, name)
        func = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
        assert isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef)
        statements = [
            n for n in func.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
        ]
        assert len(statements) == 1 and isinstance(statements[0], ast.Return), name
        run = statements[0].value
        if isinstance(run, ast.Await):
            run = run.value
        assert isinstance(run, ast.Call) and ast.unparse(run.func) == "self._run", name
        built, timeout = run.args
        assert isinstance(built, ast.Call) and ast.unparse(built.func) == f"rq.{name}", name
        assert ast.unparse(timeout) == "timeout", name
        passed = [ast.unparse(a) for a in built.args]
        passed += [k.arg for k in built.keywords if k.arg == ast.unparse(k.value)]
        assert passed == [p for p in inspect.signature(fn).parameters if p not in ("self", "timeout")], name


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, kc.InvalidRequest),
        (grpc.StatusCode.UNAUTHENTICATED, kc.Unauthorized),
        (grpc.StatusCode.PERMISSION_DENIED, kc.Unauthorized),
        (grpc.StatusCode.NOT_FOUND, kc.NotFound),
        (grpc.StatusCode.ABORTED, kc.Conflict),
        (grpc.StatusCode.FAILED_PRECONDITION, kc.PreconditionFailed),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, kc.Overloaded),
        (grpc.StatusCode.UNAVAILABLE, kc.Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, kc.DeadlineExceeded),
        (grpc.StatusCode.INTERNAL, kc.KnowledgeError),
    ],
)
def test_grpc_status_table(code: grpc.StatusCode, cls: type[kc.KnowledgeError]):
    err = from_grpc(code, "why", [("retry-after-ms", "250")])
    assert type(err) is cls and (err.status, err.detail, err.retry_after) == (code.name, "why", 0.25)


@pytest.mark.parametrize(
    ("status", "cls", "name"),
    [
        (400, kc.InvalidRequest, "INVALID_ARGUMENT"),
        (413, kc.InvalidRequest, "INVALID_ARGUMENT"),
        (401, kc.Unauthorized, "UNAUTHENTICATED"),
        (403, kc.Unauthorized, "PERMISSION_DENIED"),
        (404, kc.NotFound, "NOT_FOUND"),
        (409, kc.Conflict, "ABORTED"),
        (412, kc.PreconditionFailed, "FAILED_PRECONDITION"),
        (429, kc.Overloaded, "RESOURCE_EXHAUSTED"),
        (502, kc.Unavailable, "UNAVAILABLE"),
        (503, kc.Unavailable, "UNAVAILABLE"),
        (504, kc.DeadlineExceeded, "DEADLINE_EXCEEDED"),
        (500, kc.KnowledgeError, "INTERNAL"),
    ],
)
def test_http_status_table(status: int, cls: type[kc.KnowledgeError], name: str):
    err = from_http(status, {"detail": "framework says no"}, "2")
    assert type(err) is cls and (err.status, err.http_status, err.retry_after) == (name, status, 2.0)
    body = {"error": {"code": "INVALID_ARGUMENT", "message": "top_k: at most 100", "field": "top_k"}}
    err = from_http(422, body)
    assert (err.status, err.detail, err.field, err.retry_after) == (
        "INVALID_ARGUMENT",
        "top_k: at most 100",
        "top_k",
        None,
    )


def test_one_status_table_serves_both_transports():
    """Each row: the gRPC status and every HTTP status it lists raise the same exception."""
    http_statuses = [status for _, statuses, _ in STATUS_TABLE for status in statuses]
    assert len(http_statuses) == len(set(http_statuses)), "an HTTP status in two rows"
    for name, statuses, cls in STATUS_TABLE:
        assert type(from_grpc(grpc.StatusCode[name], "why")) is cls, name
        for status in statuses:
            err = from_http(status, "why")
            assert (type(err), err.status, err.http_status) == (cls, name, status)
    deadline = from_http(504, "gateway timeout")
    assert isinstance(deadline, kc.DeadlineExceeded) and not isinstance(deadline, TRANSIENT)


def test_retry_after_forms():
    assert parse_retry_after("1.5") == 1.5 and parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 55 < (parse_retry_after(http_date) or 0) <= 61


def _mock_client(*answers: httpx.Response) -> tuple[kc.KnowledgeClient, list[httpx.Request]]:
    """A client on httpx's own MockTransport: the service answers are scripted, in order."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    transport = kc.HttpTransport("http://svc", api_key="k", client=http)
    return kc.KnowledgeClient("http://svc", transport=transport, backoff=0.01), seen


def test_overloaded_waits_for_the_retry_after_hint():
    busy = httpx.Response(
        429, headers={"retry-after": "0.3"}, json={"error": {"code": "RESOURCE_EXHAUSTED", "message": "busy"}}
    )
    client, seen = _mock_client(busy, httpx.Response(200, json={"results": []}))
    started = time.monotonic()
    assert client.search("ns", "q").results == []
    assert time.monotonic() - started >= 0.3 and len(seen) == 2
    assert seen[0].headers["authorization"] == "Bearer k"
    assert seen[0].url.path == "/v1/namespaces/ns/search"


def test_a_gateway_timeout_is_deadline_exceeded_and_not_retried():
    gateway = httpx.Response(504, text="<html>504 Gateway Time-out</html>")
    client, seen = _mock_client(gateway, httpx.Response(200, json={"results": []}))
    with pytest.raises(kc.DeadlineExceeded) as err:
        client.search("ns", "q")
    assert (err.value.status, err.value.http_status, err.value.detail) == (
        "DEADLINE_EXCEEDED",
        504,
        "<html>504 Gateway Time-out</html>",
    )
    assert len(seen) == 1


def test_an_answer_the_models_cannot_read_is_a_knowledge_error():
    client, seen = _mock_client(httpx.Response(200, json={"results": [{"doc_id": "a"}]}))
    with pytest.raises(kc.KnowledgeError) as err:
        client.search("ns", "q")
    assert type(err.value) is kc.KnowledgeError and len(seen) == 1
    assert err.value.detail == "Search: malformed response (results.0.chunk_id: Field required)"


def test_a_hint_beyond_the_deadline_fails_now():
    busy = httpx.Response(503, headers={"retry-after": "30"}, json={"error": {"message": "down"}})
    client, seen = _mock_client(busy, httpx.Response(200, json={"results": []}))
    started = time.monotonic()
    with pytest.raises(kc.Unavailable) as err:
        client.search("ns", "q", timeout=1)
    assert err.value.retry_after == 30 and time.monotonic() - started < 0.5 and len(seen) == 1


@pytest.mark.parametrize("status", [401, 403, 404, 409, 412, 422, 500, 504])
def test_permanent_failures_are_not_retried(status: int):
    client, seen = _mock_client(
        httpx.Response(status, json={"error": {"message": "no"}}), httpx.Response(200, json={"results": []})
    )
    with pytest.raises(kc.KnowledgeError):
        client.search("ns", "q")
    assert len(seen) == 1


def _deadline_ms(request: httpx.Request) -> int:
    return int(request.headers["x-request-timeout-ms"])


def test_every_request_carries_what_is_left_of_the_deadline():
    """Per attempt: a retry gets less; per batch of a stream: each batch gets what is left."""
    ok = httpx.Response(200, json={"results": [], "index_version": 1, "documents": 0, "chunks": 0})
    down = httpx.Response(503, json={"error": {"message": "down"}})
    doc = httpx.Response(200, json={"id": "a", "text": "t"})
    client, seen = _mock_client(down, ok, ok, ok, ok, doc)
    client.search("ns", "q", timeout=2)
    assert 1900 <= _deadline_ms(seen[0]) <= 2000 and 0 < _deadline_ms(seen[1]) < _deadline_ms(seen[0])
    client.count("ns")  # the client's default: 10 s
    assert 9900 <= _deadline_ms(seen[2]) <= 10_000
    client.ingest_stream("ns", [[{"id": "a", "text": "t"}], [{"id": "b", "text": "t"}]], timeout=3)
    assert 2900 <= _deadline_ms(seen[4]) <= _deadline_ms(seen[3]) <= 3000
    client.get("ns", "a", timeout=0.5)
    assert 400 <= _deadline_ms(seen[5]) <= 500
    # Whole milliseconds, rounded down, never below the 1 ms the service accepts; none without one.
    assert [_deadline(t) for t in (2.5009, 0.0004, None)] == [
        {"x-request-timeout-ms": "2500"},
        {"x-request-timeout-ms": "1"},
        {},
    ]
    assert [r.url.path for r in seen] == [
        "/v1/namespaces/ns/search",
        "/v1/namespaces/ns/search",
        "/v1/namespaces/ns/count",
        "/v1/namespaces/ns/documents",
        "/v1/namespaces/ns/documents",
        "/v1/namespaces/ns/documents/a",
    ]


async def test_the_async_client_sends_the_deadline_too():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"profiles": []})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    transport = kc.AsyncHttpTransport("http://svc", client=http)
    async with kc.AsyncKnowledgeClient("http://svc", transport=transport, timeout=4) as client:
        assert await client.list_profiles() == []
    assert 3900 <= _deadline_ms(seen[0]) <= 4000
    await http.aclose()


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.ingest_stream("ns", [[{"id": "a", "text": "t"}]]),
        lambda c: c.put_profile("p", {"top_k": 3}),
        lambda c: c.rollback_profile("p", 1),
    ],
)
def test_writes_that_cannot_be_replayed_are_not_retried(call: object):
    down = httpx.Response(503, json={"error": {"message": "down"}})
    client, seen = _mock_client(down, httpx.Response(200, json={"results": [], "index_version": 1}))
    with pytest.raises(kc.Unavailable):
        call(client)  # type: ignore[operator]
    assert len(seen) == 1
