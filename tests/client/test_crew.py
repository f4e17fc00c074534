"""A real CrewAI crew, driven by a scripted LLM, calls knowledge_search against the real service."""

from __future__ import annotations

import json
from typing import Any

import pytest
from crewai import Agent, Crew, Task
from crewai.llms.base_llm import BaseLLM
from crewai.tools import BaseTool
from pydantic import Field

from knowledge_client import KnowledgeClient
from knowledge_client.crewai import KnowledgeSearchTool

from .client_support import NS, Service, blocking, free_port

QUESTION = "who do I page when search is slow?"
PASSAGE = "Page the search team when p99 latency is over 200 ms."


class ScriptedLLM(BaseLLM):
    """Answers from a script: first a tool call (native or ReAct text), then a final answer.

    Records every message list it is sent, so a test can read what the tool's output became.
    """

    native: bool = True
    replies: list[Any] = Field(default_factory=list)
    seen: list[list[dict[str, Any]]] = Field(default_factory=list)

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> Any:
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        self.seen.append([dict(m) for m in messages])
        if self.native:
            assert tools and tools[0]["function"]["name"] == "knowledge_search"
        return self.replies.pop(0)

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        return self.call(*args, **kwargs)

    def supports_function_calling(self) -> bool:
        return self.native

    def get_context_window_size(self) -> int:
        return 16_000


def _native_script(arguments: dict[str, Any]) -> list[Any]:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "knowledge_search", "arguments": json.dumps(arguments)},
    }
    return [[call], "Page the search team [1]."]


def _react_script(arguments: dict[str, Any]) -> list[Any]:
    return [
        "Thought: I should look this up in the handbook.\nAction: knowledge_search\n"
        f"Action Input: {json.dumps(arguments)}",
        "Thought: I now know the final answer\nFinal Answer: Page the search team [1].",
    ]


def _crew(llm: ScriptedLLM, tool: KnowledgeSearchTool) -> Crew:
    agent = Agent(
        role="On-call assistant",
        goal="Answer on-call questions from the handbook",
        backstory="You cite the handbook.",
        llm=llm,
        tools=[tool],
        allow_delegation=False,
        max_iter=3,
        verbose=False,
    )
    task = Task(description=QUESTION, expected_output="An answer that cites passages as [n].", agent=agent)
    return Crew(agents=[agent], tasks=[task], verbose=False)


@pytest.fixture
def searches(service: Service, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every SearchRequest the service's core receives (the real search still runs)."""
    seen: list[Any] = []
    real = service.core.searcher.search

    async def recording(req: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(req)
        return await real(req, *args, **kwargs)

    monkeypatch.setattr(service.core.searcher, "search", recording)
    return seen


def _tool_output(llm: ScriptedLLM) -> str:
    """What the LLM was sent after its tool call: the newest message carrying the tool's text."""
    assert len(llm.seen) == 2, "the LLM should be called twice: tool call, then final answer"
    for message in reversed(llm.seen[1]):
        content = str(message.get("content") or "")
        if "knowledge_search" in content or "[1]" in content:
            return content
    raise AssertionError(f"no tool output in {llm.seen[1]}")


@pytest.mark.parametrize("mode", ["native", "react"])
async def test_crew_calls_knowledge_search(service: Service, searches: list[Any], transport: str, mode: str):
    args = {"query": QUESTION, "top_k": 2, "filter": [{"field": "team", "eq": "search"}]}
    llm = ScriptedLLM(
        model="scripted",
        native=mode == "native",
        replies=_native_script(args) if mode == "native" else _react_script(args),
    )
    tool = KnowledgeSearchTool(target=service.target(transport), transport=transport, namespace=NS)
    result = await blocking(_crew(llm, tool).kickoff)

    assert [(r.namespace, r.query, r.top_k, r.filter) for r in searches] == [
        (NS, QUESTION, 2, {"field": "team", "eq": "search"})
    ]
    if mode == "native":
        tool_messages = [m for m in llm.seen[1] if m.get("role") == "tool"]
        assert [m.get("tool_call_id") for m in tool_messages] == ["call_1"]
    output = _tool_output(llm)
    assert '[1] "On-call" (doc: oncall, chunk: oncall#0)' in output and PASSAGE in output
    assert "[2]" not in output  # the filter left one document
    assert "Page the search team [1]." in result.raw
    tool.close()


async def test_async_crew_calls_knowledge_search(service: Service, searches: list[Any]):
    llm = ScriptedLLM(model="scripted", replies=_native_script({"query": QUESTION}))
    tool = KnowledgeSearchTool(target=service.grpc, namespace=NS, top_k=3)
    result = await _crew(llm, tool).akickoff()
    assert [(r.query, r.top_k, r.filter) for r in searches] == [(QUESTION, 3, None)]
    output = _tool_output(llm)
    assert PASSAGE in output and "[3]" in output
    assert "[1]" in result.raw
    tool.close()


async def test_a_failing_service_does_not_break_the_crew():
    llm = ScriptedLLM(model="scripted", replies=_native_script({"query": QUESTION}))
    tool = KnowledgeSearchTool(target=f"127.0.0.1:{free_port()}", namespace=NS, retries=1)
    result = await blocking(_crew(llm, tool).kickoff)
    output = _tool_output(llm)
    assert "knowledge_search failed" in output and "unavailable" in output
    assert "Retrying later may help" in output
    assert result.raw == "Page the search team [1]."  # the crew went on to the LLM's final answer
    tool.close()


async def test_tool_runs_directly_and_async(service: Service):
    tool = KnowledgeSearchTool(target=service.http, transport="http", namespace=NS, max_chars=300)
    text = await blocking(tool.run, query=QUESTION)
    assert text.startswith(f'Passages from "{NS}"') and len(text) <= 300 and "[1]" in text
    assert await tool.arun(query=QUESTION) == text
    missing = await blocking(tool._run, "zebra crossing", filter=[{"field": "team", "eq": "nobody"}])
    assert missing.startswith("No relevant passages found")
    bad = await blocking(tool._run, QUESTION, filter=[{"field": "team"}])
    assert bad.startswith("knowledge_search failed: the service rejected the arguments")
    bad = await blocking(tool._run, QUESTION, top_k=500)
    assert "top_k" in bad and "will fail again" in bad
    tool.close()


async def test_tool_searches_with_its_profile(service: Service, searches: list[Any]):
    client = KnowledgeClient(service.grpc)
    await blocking(client.put_profile, "brief", {"top_k": 1})
    tool = KnowledgeSearchTool(target=service.grpc, namespace=NS, profile="brief")
    text = await blocking(tool._run, QUESTION)
    assert "[1]" in text and "[2]" not in text and PASSAGE in text
    assert [(r.profile, r.top_k) for r in searches] == [("brief", None)]
    unknown = KnowledgeSearchTool(target=service.grpc, namespace=NS, profile="nope")
    text = await blocking(unknown._run, QUESTION)
    assert text.startswith("knowledge_search failed: not found (profile 'nope' does not exist")
    for closable in (client, tool, unknown):
        closable.close()


def test_tool_surface_and_defaults():
    import knowledge_client.crewai as tool_module

    assert tool_module.__all__ == [
        "KnowledgeSearchInput",
        "KnowledgeSearchTool",
        "MetadataCondition",
        "ValueRange",
    ]
    tool = KnowledgeSearchTool(namespace="handbook")
    assert isinstance(tool, BaseTool) and tool.name == "knowledge_search"
    assert "'handbook' knowledge base" in tool.description
    settings = {
        k: getattr(tool, k)
        for k in ("target", "transport", "profile", "api_key", "timeout", "retries", "top_k", "max_chars")
    }
    assert settings == {
        "target": "127.0.0.1:50051",
        "transport": "grpc",
        "profile": None,
        "api_key": None,
        "timeout": 10.0,
        "retries": 2,
        "top_k": None,
        "max_chars": 4000,
    }
    assert set(tool.args_schema.model_fields) == {"query", "top_k", "filter"}
    with pytest.raises(ValueError):
        KnowledgeSearchTool(namespace="handbook", max_chars=10)
    with pytest.raises(ValueError):
        KnowledgeSearchTool()  # type: ignore[call-arg]  # namespace is required
    secret = KnowledgeSearchTool(namespace="handbook", api_key="s3cret", transport="http")
    assert "s3cret" not in repr(secret) and "s3cret" not in secret.model_dump_json()
    for t in (tool, secret):
        t.close()
