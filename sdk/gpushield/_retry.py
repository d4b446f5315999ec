"""When to try a call again, and how long to wait: one tenacity policy for both clients.

A retry is safe because every attempt of one `infer` call carries the same Idempotency-Key:
the gate runs the GPU at most once per key and replays the stored answer. It is still not
free (each attempt spends a rate-limit token), so the policy retries only what can succeed
on a later attempt:

- a connect failure (`httpx.ConnectError` / `ConnectTimeout`): the request never left;
- 429: after `Retry-After` when the gate said (RFC 9110 §10.2.3), else exponential backoff
  with jitter; a `Retry-After` longer than `max_wait` ends the retries at once, because
  waiting less than asked only buys another 429;
- 502/503/504 whose catalog entry is retryable (`backend_unavailable`, `backend_timeout`,
  `guard_unavailable`), and those statuses without one of our codes (a proxy's 502).
  `backend_failed` is not: the model failed on this input and would fail (and bill) again.

Nothing else: a 401 or 422 is the same answer next time. The total `deadline` bounds the time
spent including waits; a wait that would overrun it is not started. `max_backoff` caps the
exponential waits, `max_wait` the waits the gate asks for.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from .errors import APIError, RateLimited, TransportError

__all__ = ["RetryPolicy"]

logger = logging.getLogger("gpushield")
_jitter = random.Random()  # noqa: S311 - spreading retries out, not cryptography


def is_retryable(error: BaseException) -> bool:
    """The one retry predicate: the exception says whether it may be retried."""
    if isinstance(error, TransportError | APIError):
        return error.retryable
    return False


class _wait_retry_after(wait_base):
    """Retry-After when the last answer carried it, else capped exponential backoff with
    "equal" jitter (half fixed, half random), so clients refused together do not all come
    back together, yet none retries almost at once."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return error.retry_after
        ceiling = min(self.maximum, self.initial * 2.0 ** (retry_state.attempt_number - 1))
        return ceiling / 2 + _jitter.uniform(0, ceiling / 2)


class _stop_when_asked_to_wait_too_long(stop_base):
    """Stops when the gate asks for a wait longer than `max_wait`: a shorter one is futile."""

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        return (
            isinstance(error, RateLimited)
            and error.retry_after is not None
            and error.retry_after > self.max_wait
        )


def _log_before_sleep(retry_state: RetryCallState) -> None:
    # Attempt numbers, the code and the wait: never headers, bodies or messages from httpx.
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None else None
    what = (
        f"{error.status} {error.code}"
        if isinstance(error, APIError)
        else type(error.__cause__ or error).__name__
        if error is not None
        else "no error"
    )
    sleep = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
    logger.debug(
        "gpushield: attempt %d failed (%s); retrying in %.2fs",
        retry_state.attempt_number,
        what,
        sleep,
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts, how long each wait may be, and how long the whole call may take.

    `max_attempts` counts the first try (max_retries + 1). `deadline` (seconds) bounds the
    whole call including waits; None means only the attempt count bounds it.
    """

    max_attempts: int = 4
    max_wait: float = 30.0
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    deadline: float | None = 120.0

    def _stop(self) -> stop_base:
        stop: stop_base = stop_after_attempt(self.max_attempts) | _stop_when_asked_to_wait_too_long(
            self.max_wait
        )
        if self.deadline is not None:
            # Evaluated after the wait is chosen: a wait that would overrun is never started.
            stop = stop | stop_before_delay(self.deadline)
        return stop

    def _wait(self) -> wait_base:
        return _wait_retry_after(self.initial_backoff, self.max_backoff)

    def sync(self) -> Retrying:
        """A fresh tenacity controller for one call (they keep per-call statistics)."""
        return Retrying(
            retry=retry_if_exception(is_retryable),
            stop=self._stop(),
            wait=self._wait(),
            before_sleep=_log_before_sleep,
            reraise=True,
        )

    def async_(self) -> AsyncRetrying:
        """The same policy for `AsyncClient`; sleeps with the event loop's sleep."""
        return AsyncRetrying(
            retry=retry_if_exception(is_retryable),
            stop=self._stop(),
            wait=self._wait(),
            before_sleep=_log_before_sleep,
            reraise=True,
        )
