"""Retry with exponential backoff and full jitter, only for causes that are known transient.

Rate limits (429), server errors (5xx) and timeouts are retried; a ``Retry-After`` the
provider sent wins over our own delay when it is longer. Everything else (refusals, bad
requests, missing models, invalid output) is deterministic and raised at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TypeVar

from emoforge.agents.base import AnnotatorError, ModelReply
from emoforge.agents.costs import BudgetExceeded, CostLedger, cost_usd
from emoforge.configs.agents import Price
from emoforge.storage.records import ErrorKind, Usage
from emoforge.storage.secrets import scrubbed_logger

# Provider error text can quote the key it was sent: scrubbed before any handler sees it.
log = scrubbed_logger(__name__)

T = TypeVar("T")

RETRYABLE = frozenset({ErrorKind.rate_limited, ErrorKind.provider_error, ErrorKind.timeout})


@dataclass
class RetryPolicy:
    """``max_retries`` retries after the first attempt; delay ~ U(0, min(max, base * 2**k))."""

    max_retries: int = 3
    base_s: float = 1.0
    max_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, retry: int, retry_after_s: float | None) -> float:
        jittered = self.rng.uniform(0, min(self.max_s, self.base_s * (2**retry)))
        if retry_after_s is not None:
            return min(self.max_s, max(jittered, retry_after_s))
        return jittered


@dataclass
class RetryOutcome:
    attempts: int = 0
    waited_s: float = 0.0


def call_with_retry(fn: Callable[[], T], policy: RetryPolicy, outcome: RetryOutcome | None = None) -> T:
    """Call ``fn``; retry ``AnnotatorError`` of a retryable kind; re-raise the last one."""
    outcome = outcome if outcome is not None else RetryOutcome()
    retry = 0
    while True:
        outcome.attempts += 1
        try:
            return fn()
        except AnnotatorError as exc:
            if not exc.sent:  # failed before a request went out: no call to count
                outcome.attempts -= 1
            if exc.kind not in RETRYABLE or retry >= policy.max_retries:
                raise
            wait = policy.delay(retry, exc.retry_after_s)
            log.info("retrying after %s (%s), attempt %d, waiting %.2fs", exc.kind, exc, retry + 1, wait)
            outcome.waited_s += wait
            policy.sleep(wait)
            retry += 1


def budgeted_call(
    call: Callable[[], ModelReply],
    *,
    ledger: CostLedger,
    price: Price,
    estimate_usd: float,
    limiter: AbstractContextManager[object],
    policy: RetryPolicy,
    outcome: RetryOutcome,
    usage: Usage | None = None,
) -> tuple[ModelReply, float]:
    """One paid call as annotators and the LLM judge make it; returns the reply and its USD.

    Reserve the estimate (past the cap: ``budget_exceeded`` and no call), call under the
    provider's concurrency limit with retries, then settle the real cost; a call that fails
    settles at zero so its reservation does not hold the budget. ``usage`` (the record's)
    gets the attempts and wall time, also of a call that failed, and the tokens and USD.
    """
    started = time.perf_counter()
    try:
        try:
            ledger.reserve(estimate_usd)
        except BudgetExceeded as exc:
            raise AnnotatorError(ErrorKind.budget_exceeded, str(exc)) from exc
        try:
            with limiter:
                reply = call_with_retry(call, policy, outcome)
        except BaseException:
            ledger.settle(estimate_usd, 0.0)
            raise
    finally:
        if usage is not None:
            usage.latency_s += time.perf_counter() - started
            usage.calls += outcome.attempts
            usage.attempts += outcome.attempts
    actual = cost_usd(price, reply.input_tokens, reply.output_tokens, reply.audio_input_tokens)
    ledger.settle(estimate_usd, actual)
    if usage is not None:
        usage.input_tokens += reply.input_tokens
        usage.output_tokens += reply.output_tokens
        usage.cost_usd += actual
    return reply, actual
