"""Fault injection for the core's store calls: fail, block or interleave chosen calls.

``Faults(core)`` replaces ``core.runner.run`` (every pipeline reaches the store through it) with a
wrapper that runs the real call, but first or afterwards does what a rule says: raise, wait on an
event, or run another coroutine (another replica's write, say). Rules match a store method by
name and fire a set number of times.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from knowledge_service.app import Knowledge

Action = Callable[[], Awaitable[Any]]


@dataclass
class Rule:
    method: str
    before: Action | None = None
    after: Action | None = None
    times: int = 1
    fired: int = 0


class Faults:
    def __init__(self, core: Knowledge) -> None:
        self.core = core
        self.real = core.runner.run
        self.rules: list[Rule] = []
        self.calls: list[str] = []
        core.runner.run = self.run  # type: ignore[method-assign]

    def on(
        self, method: str, *, before: Action | None = None, after: Action | None = None, times: int = 1
    ) -> Rule:
        rule = Rule(method, before, after, times)
        self.rules.append(rule)
        return rule

    def fail(self, method: str, *, after: bool = False, times: int = 1) -> Rule:
        """Make ``method`` raise (before it runs, or after it ran: its effect stays)."""

        async def boom() -> None:
            raise ConnectionError(f"injected failure in {method}")

        return self.on(method, before=None if after else boom, after=boom if after else None, times=times)

    def restore(self) -> None:
        self.core.runner.run = self.real  # type: ignore[method-assign]

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        name = getattr(fn, "__name__", "")
        self.calls.append(name)
        rule = next((r for r in self.rules if r.method == name and r.fired < r.times), None)
        if rule is not None:
            rule.fired += 1
            if rule.before is not None:
                await rule.before()
        result = await self.real(fn, *args)
        if rule is not None and rule.after is not None:
            await rule.after()
        return result
