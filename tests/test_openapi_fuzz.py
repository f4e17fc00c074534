"""The HTTP door fuzzed from its own OpenAPI spec (schemathesis): for every operation, requests
made from the schema (valid and not) never get a 5xx, and every response matches what the spec
says of its status code, content type, headers and body. It runs against a real `knowledge
serve` child on the embedded defaults, with a namespace that holds documents, on a bounded budget:
EXAMPLES per operation in the suite, more under HYPOTHESIS_PROFILE=deep."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from harness import ServedProcess, served_child

EXAMPLES = 20
# Requests the spec allows that the service may still refuse (422, saying what to change): limits a
# schema cannot state (filter depth and conditions, metadata bytes, each document of a batch
# checked on its own so the others can land) are checked by the service, not the spec.
LOOSER_THAN_THE_SPEC = [positive_data_acceptance]


def no_server_error_but_the_callers_own_deadline(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """No 5xx, except 504 DEADLINE_EXCEEDED when the request itself set x-request-timeout-ms
    (a fuzzed 1 ms deadline passes before any search can finish: that answer is the contract)."""
    if response.status_code < 500:
        return None
    own_deadline = "x-request-timeout-ms" in {k.lower() for k in (case.headers or {})}
    if response.status_code == 504 and own_deadline and "DEADLINE_EXCEEDED" in response.text:
        return None
    raise AssertionError(f"{case.operation.label}: {response.status_code} {response.text[:300]}")


CHECKS = {
    "excluded_checks": [*LOOSER_THAN_THE_SPEC, not_a_server_error],
    "additional_checks": [no_server_error_but_the_callers_own_deadline],
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProcess]:
    with served_child(tmp_path_factory.mktemp("fuzzed")) as proc:
        docs = [{"id": f"d{i}", "text": f"notes on topic {i}", "metadata": {"n": i}} for i in range(5)]
        httpx.post(
            f"{proc.url}/v1/namespaces/kb/documents", json={"documents": docs}, timeout=60
        ).raise_for_status()
        yield proc


@pytest.fixture(scope="module")
def api(served: ServedProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json")


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_server_error_and_every_response_matches_the_spec(
    api: schemathesis.BaseSchema, served: ServedProcess, mode: str
) -> None:
    """Each operation in turn, with requests the spec allows (positive) or forbids (negative);
    every operation is tried, then each failing one is reported with its smallest example."""
    failures: dict[str, str] = {}
    tried: list[str] = []
    inputless: list[str] = []
    total = len(list(api.get_all_operations()))
    for result in api.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=max(EXAMPLES, settings.default.max_examples // 5),
            suppress_health_check=list(HealthCheck),
        )
        @given(operation.as_strategy(generation_mode=GenerationMode(mode)))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=served.url, timeout=30, **CHECKS)

        try:
            check()
            tried.append(operation.label)
        except Unsatisfiable:  # negative: an operation with no inputs has no invalid request
            assert mode == "negative", operation.label
            inputless.append(operation.label)
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failure is collected
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:3000]
    assert tried and len(tried) + len(inputless) + len(failures) == total  # every operation ran
    assert not failures, "\n\n".join(f"{label}\n{why}" for label, why in failures.items())
