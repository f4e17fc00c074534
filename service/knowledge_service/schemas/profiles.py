"""Profiles and namespace settings: changes, references and what is stored."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from knowledge_service.schemas.common import Namespace, ProfileName, Strict
from knowledge_service.schemas.search import RetrievalSettings


class RequireEval(Strict):
    """The evaluation gate: a labelled query set run on a namespace, from a BEIR folder under
    KNOWLEDGE_EVAL_DATASETS_DIR (``dataset``, ``split``) or uploaded (``queries``, ``qrels``)."""

    dataset: str | None = Field(
        None, description="A BEIR folder under KNOWLEDGE_EVAL_DATASETS_DIR: its name or a path inside it."
    )
    split: str = Field("test", description="The qrels file of the dataset: qrels/<split>.tsv.")
    queries: dict[str, str] | None = Field(None, description="Uploaded instead of dataset: id -> text.")
    qrels: dict[str, dict[str, int]] | None = Field(None, description="query id -> doc id -> grade.")
    namespace: Namespace
    min_delta: float = Field(0.0, ge=0, le=1, description="nDCG@10 the new version may lose.")

    @model_validator(mode="after")
    def _one_query_set(self) -> RequireEval:
        from knowledge_service.schemas.evaluations import (
            check_query_set,  # the evaluation limits live beside the dataset loader
        )

        check_query_set(self.dataset, self.queries, self.qrels)
        return self


class PutProfileRequest(Strict):
    name: ProfileName
    settings: dict[str, Any] = Field(default_factory=dict, description="Unset fields take the defaults.")
    expected_version: int | None = Field(None, ge=0, description="Fail with 409 unless this is current.")
    require_eval: RequireEval | None = None
    note: str | None = Field(None, max_length=500)


class ProfileRef(Strict):
    name: ProfileName


class NamespaceRef(Strict):
    namespace: Namespace


class RollbackRequest(Strict):
    name: ProfileName | None = Field(None, description="Taken from the path on HTTP.")
    version: int = Field(ge=1)


class NamespaceSettings(Strict):
    namespace: Namespace
    default_profile: ProfileName


class ProfileOut(BaseModel):
    name: str
    version: int
    settings: RetrievalSettings
    created_at: float
    note: str | None = None
