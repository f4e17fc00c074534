"""Error mapping, deadlines, retries and thread-safety against the real service (both transports)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import knowledge_client as kc
from knowledge_service.core.errors import Overloaded

from .client_support import NS, Service, blocking, free_port, serve

RETRY_LOG = "retrying in"


def _retries(caplog: pytest.LogCaptureFixture) -> int:
    return sum(RETRY_LOG in r.getMessage() for r in caplog.records if r.name == "knowledge_client")


class _RetryLogged(logging.Handler):
    """Sets ``event`` when the client logs its first retry (an attempt has failed)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if RETRY_LOG in record.getMessage():
            self.event.set()


@pytest.fixture(autouse=True)
def _log_retries(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="knowledge_client")


BAD_CALLS = [
    (lambda c: c.search(NS, " "), "query"),
    (lambda c: c.search(NS, "pager", top_k=1000), "top_k"),
    (lambda c: c.search("a b", "pager"), "namespace"),
    (lambda c: c.search(NS, "pager", filter={"field": "year", "gt": 1}), "filter"),
    (lambda c: c.search(NS, "pager", mode="fuzzy"), "mode"),
    (lambda c: c.search(NS, "pager", overrides={"top_k": 0}), "top_k"),
    (lambda c: c.search(NS, "pager", overrides={"colour": "red"}), "colour"),
    (lambda c: c.search(NS, "pager", fusion={"method": "magic"}), "fusion"),
    (lambda c: c.put_profile("a b", {"top_k": 3}), "name"),
    (lambda c: c.put_profile("p", {"top_k": 1000}), "top_k"),
    (lambda c: c.put_profile("p", require_eval={"dataset": "x"}), "require_eval"),
    (lambda c: c.set_namespace_settings(NS, "a b"), "default_profile"),
    (lambda c: c.ingest(NS, []), "documents"),
    (lambda c: c.delete(NS), "ids"),
    (lambda c: c.get(NS, ""), "doc_id"),
    (lambda c: c.count(NS, filter={"and": "x"}), "filter"),
]


async def test_bad_input_is_invalid_request_and_never_retried(
    service: Service, transport: str, caplog: pytest.LogCaptureFixture
):
    client = kc.KnowledgeClient(service.target(transport), transport=transport)
    for call, field in BAD_CALLS:
        with pytest.raises(kc.InvalidRequest) as err:
            await blocking(call, client)
        assert err.value.status == "INVALID_ARGUMENT" and field in err.value.detail, field
        assert not err.value.retryable
        if transport == "http" and field in ("query", "top_k", "filter", "documents"):
            # The service names the field, or a path inside it ("filter.and").
            assert (err.value.http_status, (err.value.field or "").split(".")[0]) == (422, field)
    assert _retries(caplog) == 0
    client.close()


async def test_unknown_document_or_profile_is_not_found(service: Service, transport: str):
    async with kc.AsyncKnowledgeClient(service.target(transport), transport=transport) as client:
        with pytest.raises(kc.NotFound) as err:
            await client.get(NS, "nope")
        assert err.value.status == "NOT_FOUND" and "nope" in err.value.detail
        for call in (client.get_profile("nope"), client.search(NS, "pager", profile="nope")):
            with pytest.raises(kc.NotFound) as err:
                await call
            assert "'nope' does not exist" in err.value.detail


async def test_nothing_listening_is_unavailable_after_bounded_retries(
    transport: str, caplog: pytest.LogCaptureFixture
):
    client = kc.KnowledgeClient(f"127.0.0.1:{free_port()}", transport=transport, retries=2, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(kc.Unavailable) as err:
        await blocking(client.search, NS, "pager")
    assert err.value.status == "UNAVAILABLE" and err.value.retryable
    assert _retries(caplog) == 2 and time.monotonic() - started < 3
    async with kc.AsyncKnowledgeClient(
        f"127.0.0.1:{free_port()}", transport=transport, retries=1, backoff=0.05
    ) as aclient:
        with pytest.raises(kc.Unavailable):
            await aclient.count(NS)
    assert _retries(caplog) == 3
    client.close()


async def test_stopped_service_is_unavailable(core: Any, settings: Any, transport: str):
    port = free_port()
    client = kc.KnowledgeClient(f"127.0.0.1:{port}", transport=transport, retries=1, backoff=0.05)
    async with serve(transport, core, settings, port):
        assert (await blocking(client.count, NS)).documents == 0
    with pytest.raises(kc.Unavailable):
        await blocking(client.count, NS)
    client.close()


async def test_deadline_exceeded(service: Service, transport: str, caplog: pytest.LogCaptureFixture):
    client = kc.KnowledgeClient(service.target(transport), transport=transport)
    with pytest.raises(kc.DeadlineExceeded) as err:
        await blocking(client.search, NS, "a query nobody asked before", timeout=0.001)
    assert err.value.status == "DEADLINE_EXCEEDED" and _retries(caplog) == 0
    async with kc.AsyncKnowledgeClient(service.target(transport), transport=transport) as aclient:
        with pytest.raises(kc.DeadlineExceeded):
            await aclient.search(NS, "another query nobody asked before", timeout=0.001)
    # The client is fine afterwards.
    hits = (await blocking(client.search, NS, "pager", top_k=1)).results
    assert [(h.doc_id, h.chunk_id) for h in hits] == [("oncall", "oncall#0")]
    client.close()


async def test_retry_recovers_when_the_service_starts_late(
    core: Any, settings: Any, transport: str, caplog: pytest.LogCaptureFixture
):
    """The first attempts find nothing listening; the service starts during the backoff."""
    port = free_port()
    client = kc.KnowledgeClient(
        f"127.0.0.1:{port}", transport=transport, retries=20, backoff=0.05, max_backoff=0.2
    )
    retried = _RetryLogged()
    logging.getLogger("knowledge_client").addHandler(retried)
    try:
        call = asyncio.ensure_future(blocking(client.count, NS))
        assert await asyncio.to_thread(retried.event.wait, 5), "the first attempt never failed"
    finally:
        logging.getLogger("knowledge_client").removeHandler(retried)
    async with serve(transport, core, settings, port):
        result = await asyncio.wait_for(call, 10)
    assert result.documents == 0 and _retries(caplog) >= 1
    client.close()


class _OverloadedOnce:
    """The real core, except that its first search sheds load (as an admission limit would).

    Records the seconds each search had left of its deadline when it reached the core.
    """

    def __init__(self, core: Any) -> None:
        self._core, self.searches = core, 0
        self.searcher = self  # the doors call core.searcher.search
        self.left: list[float | None] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    async def search(self, req: Any, deadline: float | None = None, *args: Any, **kwargs: Any) -> Any:
        self.searches += 1
        self.left.append(None if deadline is None else deadline - time.monotonic())
        if self.searches == 1:
            raise Overloaded("too many searches in flight; retry")
        return await self._core.searcher.search(req, deadline, *args, **kwargs)


async def test_overloaded_is_retried(
    service: Service, settings: Any, transport: str, caplog: pytest.LogCaptureFixture
):
    flaky = _OverloadedOnce(service.core)
    async with serve(transport, flaky, settings, free_port()) as target:
        client = kc.KnowledgeClient(target, transport=transport, backoff=0.05)
        resp = await blocking(client.search, NS, "who do I page?", top_k=1)
        client.close()
    assert resp.results[0].doc_id == "oncall"
    assert flaky.searches == 2 and _retries(caplog) == 1


async def test_the_service_sees_what_is_left_of_each_attempts_deadline(
    service: Service, settings: Any, transport: str
):
    """gRPC's deadline and HTTP's x-request-timeout-ms reach the core: each attempt gets less."""
    flaky = _OverloadedOnce(service.core)
    async with serve(transport, flaky, settings, free_port()) as target:
        client = kc.KnowledgeClient(target, transport=transport, backoff=0.2, max_backoff=0.2)
        await blocking(client.search, NS, "who do I page?", top_k=1, timeout=5)
        client.close()
    first, second = flaky.left
    assert first is not None and second is not None, flaky.left
    # gRPC carries the deadline as a timeout that the server adds to its own clock when the call
    # arrives, so what it sees may exceed the client's 5 s by the wire's rounding (seen: 9 ms)
    assert 4 < first <= 5.05 and 0 < second <= first - 0.2


async def test_one_client_serves_many_threads(service: Service, transport: str):
    expected = {
        "who do I page when search is slow?": "oncall",
        "vector database in Rust": "qdrant",
        "sourdough starter and flour": "bread",
    }
    client = kc.KnowledgeClient(service.target(transport), transport=transport)

    def hammer() -> list[tuple[str, str]]:
        def one(query: str) -> tuple[str, str]:
            assert client.count(NS).documents == 3
            return query, client.search(NS, query, top_k=1).results[0].doc_id

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(one, list(expected) * 16))

    answers = await blocking(hammer)
    assert len(answers) == 48 and all(expected[q] == doc for q, doc in answers)
    client.close()
