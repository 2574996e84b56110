"""Time budget, backoff and rate limiting for one invocation.

- :class:`Deadline`: the Lambda deadline minus a safety margin, on the monotonic clock.
- :class:`Backoff`: exponential backoff with full jitter (``uniform(0, min(cap, base * 2**n))``),
  which never sleeps past the deadline.
- :class:`TokenBucket`: an asyncio token bucket that spaces sends to a maximum rate (SES
  MaxSendRate); one bucket is shared by every send of the process.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Backoff", "Deadline", "LambdaContext", "TokenBucket"]


class LambdaContext(Protocol):
    """The part of the Lambda context object notifier uses."""

    def get_remaining_time_in_millis(self) -> int: ...


class Deadline:
    """The moment (monotonic seconds) after which no new work may start."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at

    @classmethod
    def from_context(cls, context: Any, *, margin_ms: float, default_s: float = 900.0) -> Deadline:
        """From ``context.get_remaining_time_in_millis()`` minus ``margin_ms``.

        A context without that method (local calls) gets ``default_s`` (Lambda's maximum).
        """
        getter = getattr(context, "get_remaining_time_in_millis", None)
        remaining_ms = float(getter()) if callable(getter) else default_s * 1000.0
        return cls(time.monotonic() + (remaining_ms - margin_ms) / 1000.0)

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() >= self.at


@dataclass(frozen=True, slots=True)
class Backoff:
    """Full-jitter exponential backoff, bounded by ``max_attempts`` and the deadline."""

    max_attempts: int = 8
    base_s: float = 0.025
    cap_s: float = 2.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Sleep before retry number ``attempt`` (1 = the first retry)."""
        ceiling = min(self.cap_s, self.base_s * (2 ** (attempt - 1)))
        return (rng or random).uniform(0.0, ceiling)

    async def wait(self, attempt: int, deadline: Deadline, *, at_least: float = 0.0) -> bool:
        """Sleep before retry ``attempt``; ``False`` (without sleeping) when no retry is allowed:
        attempts exhausted, or the sleep would end past the deadline."""
        if attempt >= self.max_attempts:
            return False
        pause = max(self.delay(attempt), at_least)
        if pause >= deadline.remaining():
            return False
        await asyncio.sleep(pause)
        return True


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, bursts up to ``burst``.

    Waiters are served in order: each acquisition reserves the next free slot, so a
    thousand concurrent senders are spaced out instead of stampeding.
    """

    __slots__ = ("_tokens", "_updated", "burst", "rate")

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self._tokens = self.burst
        self._updated = time.monotonic()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def reserve(self) -> float:
        """Take one token now (possibly going into debt); seconds to wait before using it."""
        now = time.monotonic()
        self._refill(now)
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate

    def give_back(self) -> None:
        """Return one token taken by :meth:`acquire` and not used."""
        self._tokens = min(self.burst, self._tokens + 1.0)

    async def acquire(self, deadline: Deadline | None = None) -> bool:
        """Wait for a token; ``False`` (token returned) if the wait would pass ``deadline``."""
        wait = self.reserve()
        if wait <= 0:
            return True
        if deadline is not None and wait >= deadline.remaining():
            self._tokens += 1.0
            return False
        await asyncio.sleep(wait)
        return True
