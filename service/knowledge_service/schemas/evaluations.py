"""Evaluation requests: profiles to compare and a labelled query set, with their bounds."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from knowledge_service.core import limits as L
from knowledge_service.schemas.common import Namespace, ProfileName, Strict

MAX_EVAL_QUERIES = 5_000  # judged queries in one evaluation
MAX_EVAL_JUDGMENTS = 500_000  # qrels lines (query, document, grade) in one evaluation
MAX_DATASET_NAME_CHARS = 1_000
DATASETS_SETTING = "KNOWLEDGE_EVAL_DATASETS_DIR"


class ProfileSpec(Strict):
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


class EvaluationRequest(Strict):
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


def check_query_set(
    dataset: str | None, queries: dict[str, str] | None, qrels: dict[str, dict[str, int]] | None
) -> None:
    """The request-side rules of a query set: a dataset name, or uploaded queries and qrels in bounds.

    Raises:
        ValueError: (for a pydantic validator) the message names the field and the limit.
    """
    uploaded = queries is not None or qrels is not None
    if dataset is not None and uploaded:
        raise ValueError("give dataset, or queries and qrels, not both")
    if dataset is None and (queries is None or qrels is None):
        raise ValueError(f"give dataset (a BEIR folder under {DATASETS_SETTING}), or both queries and qrels")
    if dataset is not None and not 1 <= len(dataset) <= MAX_DATASET_NAME_CHARS:
        raise ValueError(
            f"dataset: must be 1 to {MAX_DATASET_NAME_CHARS} characters (MAX_DATASET_NAME_CHARS)"
        )
    if queries is not None and len(queries) > MAX_EVAL_QUERIES:
        raise ValueError(
            f"queries: at most {MAX_EVAL_QUERIES} queries (MAX_EVAL_QUERIES), got {len(queries)}; "
            "evaluate a sample, or split the set over several evaluations"
        )
    if qrels is not None:
        if len(qrels) > MAX_EVAL_QUERIES:
            raise ValueError(
                f"qrels: at most {MAX_EVAL_QUERIES} judged queries (MAX_EVAL_QUERIES), got {len(qrels)}; "
                "evaluate a sample, or split the set over several evaluations"
            )
        judgments = sum(len(judged) for judged in qrels.values())
        if judgments > MAX_EVAL_JUDGMENTS:
            raise ValueError(
                f"qrels: at most {MAX_EVAL_JUDGMENTS} judgments in all (MAX_EVAL_JUDGMENTS), got "
                f"{judgments}; send fewer judged queries or fewer judgments per query"
            )


# Limits on what a caller can make the server read and run (a dataset under the root, or an upload).
