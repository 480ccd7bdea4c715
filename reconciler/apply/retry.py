"""Run one command with retries for transient failures (tenacity: capped exponential backoff with jitter).

Defaults: at most 5 attempts; waits of about 1, 2, 4, 8 s (capped at 30 s) plus up to 1 s of random jitter,
so two nodes retrying the same contention do not stay in step. ``sleep`` is injectable: tests pass a
virtual clock and never sleep for real.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt, wait_exponential_jitter

from reconciler.apply.classify import Classification, classify
from reconciler.core.actions import Command
from reconciler.host.base import CommandResult, Host

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial_s: float = 1.0
    max_s: float = 30.0
    jitter_s: float = 1.0


@dataclass(frozen=True)
class Attempted:
    result: CommandResult
    verdict: Classification
    attempts: int


def run_with_retries(host: Host, command: Command, policy: RetryPolicy, sleep: Sleep = time.sleep) -> Attempted:
    def transient(result: CommandResult) -> bool:
        return classify(result).kind == "transient"

    def give_up(state: RetryCallState) -> CommandResult:
        if state.outcome is None:  # tenacity calls this only after an attempt
            raise RuntimeError("retry gave up before any attempt")
        last: CommandResult = state.outcome.result()
        return last

    retrying = Retrying(
        stop=stop_after_attempt(max(policy.attempts, 1) if command.retry else 1),
        wait=wait_exponential_jitter(initial=policy.initial_s, max=policy.max_s, jitter=policy.jitter_s),
        retry=retry_if_result(transient),
        retry_error_callback=give_up,
        sleep=sleep,
        reraise=True,
    )
    attempts = 0

    def once() -> CommandResult:
        nonlocal attempts
        attempts += 1
        return host.run(command.argv, timeout=command.timeout_s, stdin=command.stdin)

    result: CommandResult = retrying(once)
    return Attempted(result, classify(result), attempts)
