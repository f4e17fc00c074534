"""Deadlines and retries (tenacity): transient failures only, idempotent calls only.

A call has one deadline, ``timeout`` seconds from its start, shared by every attempt: each attempt
gets what is left, and no retry is started that could not begin before the deadline. Between
attempts the client waits ``backoff * 2**n`` seconds (capped at ``max_backoff``) plus up to
``backoff`` of random jitter, or the service's ``retry-after`` hint when that is longer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from ._exceptions import DeadlineExceeded, Overloaded, Unavailable

log = logging.getLogger("knowledge_client")
T = TypeVar("T")

TRANSIENT = (Unavailable, Overloaded)


@dataclass(frozen=True)
class RetryPolicy:
    """How a client retries transient failures (Unavailable, Overloaded).

    Attributes:
        retries: Attempts after the first; 0 disables retrying.
        backoff: First wait in seconds, and the most random jitter added to each wait.
        max_backoff: Longest wait between two attempts (a longer ``retry-after`` hint still wins,
            within the call's deadline).
    """

    retries: int = 3
    backoff: float = 0.1
    max_backoff: float = 2.0


class _Wait:
    def __init__(self, policy: RetryPolicy) -> None:
        self._exp = wait_exponential_jitter(
            initial=policy.backoff, max=policy.max_backoff, jitter=policy.backoff
        )

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None) or 0.0
        return max(float(self._exp(state)), hint)


class _StopAtDeadline(stop_base):
    def __init__(self, deadline: float) -> None:
        self._deadline = deadline

    def __call__(self, state: RetryCallState) -> bool:
        return time.monotonic() + state.upcoming_sleep >= self._deadline


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.info(
        "%s failed with %s (attempt %d); retrying in %.2f s",
        state.fn.__name__ if state.fn else "call",
        getattr(exc, "status", exc),
        state.attempt_number,
        state.upcoming_sleep,
    )


def _remaining(name: str, timeout: float, deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded(f"{name}: the {timeout:g} s deadline passed before the call")
    return left


def _retrying_kwargs(policy: RetryPolicy, deadline: float) -> dict[str, object]:
    return {
        "stop": stop_after_attempt(policy.retries + 1) | _StopAtDeadline(deadline),
        "wait": _Wait(policy),
        "retry": retry_if_exception_type(TRANSIENT),
        "before_sleep": _log_retry,
        "reraise": True,
    }


def call_sync(
    name: str, attempt: Callable[[float], T], *, timeout: float, policy: RetryPolicy, idempotent: bool
) -> T:
    """Run ``attempt(seconds_left)`` within ``timeout``, retrying transient failures if idempotent."""
    deadline = time.monotonic() + timeout

    def once() -> T:
        return attempt(_remaining(name, timeout, deadline))

    once.__name__ = name
    if not idempotent or policy.retries <= 0:
        return once()
    return Retrying(**_retrying_kwargs(policy, deadline))(once)  # type: ignore[arg-type]


async def call_async(
    name: str,
    attempt: Callable[[float], Awaitable[T]],
    *,
    timeout: float,
    policy: RetryPolicy,
    idempotent: bool,
) -> T:
    """Async form of :func:`call_sync`."""
    deadline = time.monotonic() + timeout

    async def once() -> T:
        return await attempt(_remaining(name, timeout, deadline))

    once.__name__ = name
    if not idempotent or policy.retries <= 0:
        return await once()
    return await AsyncRetrying(**_retrying_kwargs(policy, deadline))(once)  # type: ignore[arg-type]
