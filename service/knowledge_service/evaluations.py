"""Evaluations: run a labelled query set against one or two profiles on a namespace and compare.

Backs ``POST /v1/evaluations``, the ``require_eval`` gate on profile changes and
``knowledge eval --profile``. Each profile retrieves ``depth`` chunks per query (its candidates
are raised to ``depth`` when smaller), collapsed to documents; the cache is bypassed.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, model_validator

from . import limits as L
from .comparison import Comparison, ProfileRun, compare, gate
from .errors import InvalidArgument, PreconditionFailed, from_validation_error
from .evaluation import collapse_to_documents, load_beir
from .models import Namespace, ProfileName, RequireEval, RetrievalSettings, SearchRequest, _Strict
from .profiles import DEFAULT
from .search import search_with

if TYPE_CHECKING:
    from .core import KnowledgeCore

MAX_EVAL_QUERIES = 5_000
DOC_LIMIT = 100


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
    dataset: str | None = Field(None, description="BEIR-layout folder on the server.")
    split: str = "test"
    queries: dict[str, str] | None = Field(None, description="Uploaded instead of dataset: id -> text.")
    qrels: dict[str, dict[str, int]] | None = Field(None, description="query id -> doc id -> grade.")
    profiles: list[ProfileSpec] = Field(min_length=1, max_length=2)
    depth: int = Field(100, ge=10, le=L.MAX_CANDIDATES, description="Chunks retrieved per query.")

    @model_validator(mode="after")
    def _one_query_set(self) -> EvaluationRequest:
        if (self.dataset is None) == (self.queries is None or self.qrels is None):
            raise ValueError("give dataset (a server path), or both queries and qrels")
        if self.queries is not None and len(self.queries) > MAX_EVAL_QUERIES:
            raise ValueError(f"at most {MAX_EVAL_QUERIES} queries (got {len(self.queries)})")
        return self


def dataset_path(core: KnowledgeCore, raw: str) -> Path:
    """A dataset folder named by a caller, confined to ``eval_datasets_dir`` when that is set."""
    path = Path(raw).resolve()
    root = core.settings.eval_datasets_dir
    if root is not None and not path.is_relative_to(root.resolve()):
        raise InvalidArgument(
            f"dataset: must be a folder inside {root} (KNOWLEDGE_EVAL_DATASETS_DIR)", field="dataset"
        )
    return path


def _query_set(
    core: KnowledgeCore, req: EvaluationRequest
) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    if req.dataset is not None:
        data = load_beir(dataset_path(core, req.dataset), req.split)
        return data.queries, data.qrels
    qrels = {q: rel for q, rel in (req.qrels or {}).items() if q in (req.queries or {})}
    if not qrels:
        raise InvalidArgument("qrels: no judged query is among the uploaded queries", field="qrels")
    return {q: req.queries[q] for q in qrels}, qrels  # type: ignore[index]


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
    for qid, text in queries.items():
        try:
            req = SearchRequest(namespace=namespace, query=text)
        except ValidationError:
            run[qid] = {}  # an empty or oversize query finds nothing
            continue
        started = time.perf_counter()
        resp = await search_with(core, req, deep, name, version or 0, use_cache=False)
        latencies.append((time.perf_counter() - started) * 1000)
        run[qid] = collapse_to_documents(((h.doc_id, h.score) for h in resp.results), DOC_LIMIT)
    return ProfileRun(name=name, version=version, run=run, latencies_ms=latencies)


async def evaluate(core: KnowledgeCore, req: EvaluationRequest) -> Comparison:
    queries, qrels = _query_set(core, req)
    runs = []
    for spec in req.profiles:
        name, version, settings = resolve_spec(core, spec, req.namespace)
        runs.append(await profile_run(core, req.namespace, queries, name, version, settings, req.depth))
    return await asyncio.to_thread(compare, qrels, runs)  # permutation tests: seconds of CPU


def gate_check(core: KnowledgeCore, name: str, rule: RequireEval):
    """A check for ProfileRegistry.put: the new settings may lose at most min_delta nDCG@10."""

    async def check(candidate: RetrievalSettings) -> None:
        current = core.profiles.find(name)  # a new profile is compared with the default one
        base = current.settings if current else core.profiles.get(DEFAULT).settings
        data = load_beir(dataset_path(core, rule.dataset), rule.split)
        runs = [
            await profile_run(
                core, rule.namespace, data.queries, name, current.version if current else None, base, 100
            ),
            await profile_run(core, rule.namespace, data.queries, f"{name} (new)", None, candidate, 100),
        ]
        result = gate(await asyncio.to_thread(compare, data.qrels, runs), rule.min_delta)
        if not result.passed:
            raise PreconditionFailed(f"require_eval: {result.message}", field="require_eval")

    return check
