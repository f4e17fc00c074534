"""The ``knowledge_search`` tool for CrewAI agents (needs ``pip install "knowledge-client[crewai]"``).

    from knowledge_client.crewai import KnowledgeSearchTool

    tool = KnowledgeSearchTool(target="127.0.0.1:50051", namespace="handbook")
    agent = Agent(role=..., goal=..., backstory=..., tools=[tool])

The LLM fills ``query`` and, optionally, ``top_k`` and a metadata ``filter``; everything else is
fixed by the crew author when constructing the tool. CrewAI runs ``_run`` in a worker thread for
``kickoff`` and ``akickoff`` alike, so ``_run`` is a plain blocking call on one shared client
(gRPC channel or HTTP pool). It never raises: a failure becomes a short message for the LLM.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

try:
    from crewai.tools import BaseTool
except ImportError as exc:  # pragma: no cover - exercised by the clean-venv test
    raise ImportError('knowledge_client.crewai needs CrewAI: pip install "knowledge-client[crewai]"') from exc
try:  # how BaseTool declares cache_function (serialisable as a dotted path) since CrewAI 1.x
    from crewai.types.callback import SerializableCallable
except ImportError:  # pragma: no cover - older CrewAI
    SerializableCallable = Any  # type: ignore[misc,assignment]
from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError, model_validator

from ._client import KnowledgeClient
from ._exceptions import InvalidRequest
from ._format import FAILED, describe_failure, format_passages

__all__ = ["KnowledgeSearchInput", "KnowledgeSearchTool", "MetadataCondition", "ValueRange"]

MAX_TOP_K = 20

Scalar = str | int | float | bool


class ValueRange(BaseModel):
    """Bounds for a numeric metadata value; leave unused bounds null."""

    gte: float | None = Field(default=None, description="Greater than or equal to.")
    gt: float | None = Field(default=None, description="Greater than.")
    lte: float | None = Field(default=None, description="Less than or equal to.")
    lt: float | None = Field(default=None, description="Less than.")


class MetadataCondition(BaseModel):
    """One condition on a metadata field: set exactly one of eq, any or range (others null)."""

    field: str = Field(description="Metadata field name, e.g. 'team' or 'year'.")
    eq: Scalar | None = Field(default=None, description="The field equals this value.")
    any: list[Scalar] | None = Field(default=None, description="The field equals one of these.")
    range: ValueRange | None = Field(default=None, description="The field is within these bounds.")

    def to_filter(self) -> dict[str, Any]:
        """This condition in the service's filter language."""
        tests = {
            "eq": self.eq,
            "any": self.any,
            "range": self.range.model_dump(exclude_none=True) if self.range else None,
        }
        given = {k: v for k, v in tests.items() if v is not None}
        if len(given) != 1:
            raise InvalidRequest(
                f"filter: condition on {self.field!r} must set exactly one of eq, "
                f"any, range (got {sorted(given) or 'none'})",
                field="filter",
            )
        return {"field": self.field, **given}


class KnowledgeSearchInput(BaseModel):
    """The arguments the LLM fills."""

    query: str = Field(
        min_length=1,
        max_length=2000,
        description="What to look for: a question or keywords, in the words the documents would use.",
    )
    top_k: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOP_K,
        description=f"How many passages to return (1-{MAX_TOP_K}); null for the tool's default.",
    )
    filter: list[MetadataCondition] | None = Field(
        default=None,
        max_length=16,
        description="Optional conditions on document metadata, all of which must hold, e.g. "
        '[{"field": "team", "eq": "search"}]; null to search everything.',
    )


def to_service_filter(conditions: list[Any] | None) -> dict[str, Any] | None:
    """The LLM's conditions (models or dicts) as one service filter (``and`` of them)."""
    if not conditions:
        return None
    try:
        parsed = [MetadataCondition.model_validate(c) for c in conditions]
    except ValidationError as exc:
        raise InvalidRequest(f"filter: {exc}", field="filter") from None
    if len(parsed) == 1:
        return parsed[0].to_filter()
    return {"and": [c.to_filter() for c in parsed]}


def _cache_successes(_args: Any = None, result: Any = None) -> bool:
    """Let CrewAI's tool cache keep answers, never failure messages."""
    return not str(result).startswith(FAILED)


class KnowledgeSearchTool(BaseTool):
    """Search a knowledge base of the side-car and return numbered, cited passages.

    Args:
        namespace: The knowledge base to search (required).
        target: The service: gRPC ``host:port``, or the HTTP base URL with ``transport="http"``.
        transport: ``"grpc"`` or ``"http"``.
        profile: The retrieval profile to search with; None uses the namespace's default.
        api_key: Sent as ``authorization: Bearer <key>``.
        timeout: Deadline of one search in seconds, retries included.
        retries: Retries of a transient failure within that deadline.
        top_k: Passages returned when the LLM does not say (1-20); None: as the profile says.
        max_chars: Character budget of the tool's answer.
    """

    name: str = "knowledge_search"
    description: str = ""
    args_schema: type[BaseModel] = KnowledgeSearchInput
    cache_function: SerializableCallable = Field(default=_cache_successes)

    namespace: str
    target: str = "127.0.0.1:50051"
    transport: Literal["grpc", "http"] = "grpc"
    profile: str | None = None
    api_key: SecretStr | None = None
    timeout: float = Field(default=10.0, gt=0)
    retries: int = Field(default=2, ge=0)
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)
    max_chars: int = Field(default=4000, ge=300)

    _client: KnowledgeClient | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _describe(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("description"):
            ns = data.get("namespace", "the")
            data = {
                **data,
                "description": (
                    f"Search the '{ns}' knowledge base and return the most relevant passages, "
                    "numbered and each with its source (title, doc id, chunk id). Use it to look up "
                    "facts before answering, and cite the passages you use as [1], [2]. Give a query "
                    "(a question or keywords); optionally top_k and a metadata filter."
                ),
            }
        return data

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        api_key = self.api_key.get_secret_value() if self.api_key else None
        # One client for the tool's life: its channel/pool is shared by every call and thread.
        self._client = KnowledgeClient(
            self.target,
            transport=self.transport,
            api_key=api_key,
            timeout=self.timeout,
            retries=self.retries,
        )

    @property
    def client(self) -> KnowledgeClient:
        """The tool's client (for the crew author's own calls, e.g. ingesting)."""
        assert self._client is not None
        return self._client

    def _run(self, query: str, top_k: int | None = None, filter: list[Any] | None = None, **_: Any) -> str:
        """Search and format; returns text, never raises."""
        try:
            resp = self.client.search(
                self.namespace,
                query,
                top_k=top_k or self.top_k,
                filter=to_service_filter(filter),
                profile=self.profile,
            )
            return format_passages(query, self.namespace, resp.results, max_chars=self.max_chars)
        except Exception as exc:  # the crew must keep going: the LLM gets an explanation instead
            return describe_failure(exc, timeout=self.timeout)

    async def _arun(
        self, query: str, top_k: int | None = None, filter: list[Any] | None = None, **_: Any
    ) -> str:
        """Async entry point: the same blocking call, in a worker thread."""
        return await asyncio.to_thread(self._run, query, top_k, filter)

    def close(self) -> None:
        """Close the tool's channel or connection pool."""
        if self._client is not None:
            self._client.close()
