"""Evaluations: run a labelled query set against one or two profiles on a namespace and compare.

Backs ``POST /v1/evaluations``, the ``require_eval`` gate on profile changes and
``knowledge eval --profile``. Each profile retrieves ``depth`` chunks per query (its candidates
are raised to ``depth`` when smaller), collapsed to documents; the cache is bypassed.

The query set is uploaded (``queries`` and ``qrels``) or read from a BEIR folder under
``KNOWLEDGE_EVAL_DATASETS_DIR`` (only its queries and qrels, off the event loop; never the
corpus). With that setting unset the server reads no dataset at all. Each replica runs at most
``max_concurrent_evaluations`` evaluations and gate checks at once (more are refused with 429
before doing anything), and every query they search goes through the search admission gate, so
evaluations queue with searches instead of bypassing their limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, model_validator

from . import limits as L
from .comparison import Comparison, ProfileRun, compare, gate
from .errors import InvalidArgument, Overloaded, PreconditionFailed, from_validation_error
from .evaluation import (
    DATASETS_SETTING,
    MAX_EVAL_JUDGMENTS,
    MAX_EVAL_QUERIES,
    check_query_set,
    collapse_to_documents,
    load_beir,
)
from .models import Namespace, ProfileName, RequireEval, RetrievalSettings, SearchRequest, _Strict
from .profiles import DEFAULT
from .search import search_with

if TYPE_CHECKING:
    from .admission import Gate
    from .core import KnowledgeCore

__all__ = [
    "MAX_EVAL_JUDGMENTS",
    "MAX_EVAL_QUERIES",
    "EvaluationRequest",
    "ProfileSpec",
    "evaluate",
    "gate_check",
    "profile_run",
    "query_set",
    "resolve_spec",
]

DOC_LIMIT = 100
GATE_DEPTH = 100  # chunks retrieved per query by the require_eval gate
# How long an evaluation waits for a free evaluation slot: not at all, a busy replica answers 429.
EVALUATION_QUEUE_WAIT_S = 0.0


class ProfileSpec(_Strict):
    """A profile by name (active version), or inline settings (a candidate not yet saved)."""

    name: ProfileName | None = None
    settings: dict[str, Any] | None = None
    overrides: dict[str, Any] | None = None
    label: str | None = Field(None, max_length=100, description="Name shown for inline settings.")

    @model_validator(mode="after")
    def _one_source(self) -> ProfileSpec:
        if (self.name is None) == (self.settings is None):
            raise ValueError("give either name or settings")
        return self


class EvaluationRequest(_Strict):
    namespace: Namespace
    dataset: str | None = Field(
        None,
        description=f"A BEIR folder under {DATASETS_SETTING}: its name (e.g. 'scifact') or a path inside it.",
    )
    split: str = Field("test", description="The qrels file of the dataset: qrels/<split>.tsv.")
    queries: dict[str, str] | None = Field(None, description="Uploaded instead of dataset: id -> text.")
    qrels: dict[str, dict[str, int]] | None = Field(None, description="query id -> doc id -> grade.")
    profiles: list[ProfileSpec] = Field(min_length=1, max_length=2)
    depth: int = Field(100, ge=10, le=L.MAX_CANDIDATES, description="Chunks retrieved per query.")

    @model_validator(mode="after")
    def _one_query_set(self) -> EvaluationRequest:
        check_query_set(self.dataset, self.queries, self.qrels)
        return self


async def query_set(
    core: KnowledgeCore,
    dataset: str | None,
    split: str,
    queries: dict[str, str] | None,
    qrels: dict[str, dict[str, int]] | None,
) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The judged queries and their qrels: uploaded, or read from a dataset under the root."""
    if dataset is None:
        uploaded = queries or {}
        judged = {q: rel for q, rel in (qrels or {}).items() if q in uploaded}
        if not judged:
            raise InvalidArgument("qrels: no judged query is among the uploaded queries", field="qrels")
        return {q: uploaded[q] for q in judged}, judged
    root = core.settings.eval_datasets_dir
    if root is None:
        raise InvalidArgument(
            f"dataset: this server reads no evaluation datasets; set {DATASETS_SETTING} on the server to "
            "a folder of BEIR datasets, or upload queries and qrels instead",
            field="dataset",
        )
    data = await asyncio.to_thread(load_beir, dataset, split, root=root, with_corpus=False)
    return data.queries, data.qrels


@contextlib.asynccontextmanager
async def _admitted(gate: Gate, refusal: str) -> AsyncIterator[None]:
    """Hold a slot of ``gate``; when none is free in time, Overloaded with ``refusal`` as its reason."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(gate.enter())
        except Overloaded as exc:
            raise Overloaded(
                f"{refusal}; retry after {exc.retry_after_s:g} s", retry_after_s=exc.retry_after_s
            ) from None
        yield


def _evaluation_slot(core: KnowledgeCore) -> contextlib.AbstractAsyncContextManager[None]:
    return _admitted(
        core.evaluation_gate,
        "too many evaluations on this replica, require_eval checks included "
        f"(KNOWLEDGE_MAX_CONCURRENT_EVALUATIONS = {core.evaluation_gate.limit})",
    )


def resolve_spec(
    core: KnowledgeCore, spec: ProfileSpec, namespace: str
) -> tuple[str, int | None, RetrievalSettings]:
    try:
        if spec.name is not None:
            profile = core.profiles.resolve(namespace, spec.name)
            name, version, base = profile.name, profile.version, profile.settings
        else:
            name, version = spec.label or "candidate", None
            base = RetrievalSettings.model_validate(spec.settings)
        return name, version, base.merged(spec.overrides or {})
    except ValidationError as exc:
        raise from_validation_error(exc) from None


async def profile_run(
    core: KnowledgeCore,
    namespace: str,
    queries: dict[str, str],
    name: str,
    version: int | None,
    settings: RetrievalSettings,
    depth: int,
) -> ProfileRun:
    deep = RetrievalSettings.model_construct(
        **{
            **settings.model_dump(),
            "fusion": settings.fusion,
            "top_k": depth,
            "candidates": max(settings.candidates, depth),
        }
    )
    run: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    for done, (qid, text) in enumerate(queries.items()):
        try:
            req = SearchRequest(namespace=namespace, query=text)
        except ValidationError:
            run[qid] = {}  # an empty or oversize query finds nothing
            continue
        refusal = (
            f"evaluation of {name!r} stopped after {done} of {len(queries)} queries: searches are at "
            f"their limit on this replica (KNOWLEDGE_MAX_CONCURRENT_SEARCHES = {core.search_gate.limit})"
        )
        async with _admitted(core.search_gate, refusal):  # each query queues with the searches
            started = time.perf_counter()
            resp = await search_with(core, req, deep, name, version or 0, use_cache=False)
            latencies.append((time.perf_counter() - started) * 1000)
        run[qid] = collapse_to_documents(((h.doc_id, h.score) for h in resp.results), DOC_LIMIT)
    return ProfileRun(name=name, version=version, run=run, latencies_ms=latencies)


async def evaluate(core: KnowledgeCore, req: EvaluationRequest) -> Comparison:
    """Compare the profiles on the query set (429 when the replica runs its limit of evaluations)."""
    async with _evaluation_slot(core):
        chosen = [resolve_spec(core, spec, req.namespace) for spec in req.profiles]
        queries, qrels = await query_set(core, req.dataset, req.split, req.queries, req.qrels)
        runs = [
            await profile_run(core, req.namespace, queries, name, version, settings, req.depth)
            for name, version, settings in chosen
        ]
        return await asyncio.to_thread(compare, qrels, runs)  # permutation tests: seconds of CPU


def gate_check(core: KnowledgeCore, name: str, rule: RequireEval):
    """A check for ProfileRegistry.put: the new settings may lose at most min_delta nDCG@10."""

    async def check(candidate: RetrievalSettings) -> None:
        async with _evaluation_slot(core):
            try:
                queries, qrels = await query_set(core, rule.dataset, rule.split, rule.queries, rule.qrels)
            except InvalidArgument as exc:
                field = f"require_eval.{exc.field}" if exc.field else "require_eval"
                raise InvalidArgument(f"require_eval: {exc.message}", field=field) from None
            current = core.profiles.find(name)  # a new profile is compared with the default one
            base = current.settings if current else core.profiles.get(DEFAULT).settings
            version = current.version if current else None
            runs = [
                await profile_run(core, rule.namespace, queries, name, version, base, GATE_DEPTH),
                await profile_run(
                    core, rule.namespace, queries, f"{name} (new)", None, candidate, GATE_DEPTH
                ),
            ]
            result = gate(await asyncio.to_thread(compare, qrels, runs), rule.min_delta)
        if not result.passed:
            raise PreconditionFailed(f"require_eval: {result.message}", field="require_eval")

    return check
