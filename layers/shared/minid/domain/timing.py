"""Even timing, so that the time an answer takes does not tell what the answer hides.

Unauthenticated routes answer a known person, an unknown number, an ineligible person and a locked
account alike; the work behind the answer cannot always be alike (a real password reset sends an SMS,
a person with a letter has it read). Where it differs, the short path waits until it has taken as long
as the full path takes: the median of the full path's recent durations in this execution environment
(or, before it has any, a starting estimate), less what waking from a sleep has lately added. The full
path is never slowed.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol

WINDOW = 31  # recent full-path durations kept: enough for a steady median, recent enough to follow load


class Stopwatch(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that only moves forward."""
        ...

    def sleep(self, seconds: float) -> None: ...


class EvenTiming:
    """One operation's paths: `full` records how long the full path took; `short` waits to match it."""

    def __init__(self, stopwatch: Stopwatch, *, initial_seconds: float, window: int = WINDOW) -> None:
        self._stopwatch = stopwatch
        self._initial = initial_seconds
        self._durations: deque[float] = deque(maxlen=window)
        self._overshoots: deque[float] = deque([0.0], maxlen=window)  # a sleep ends late, more so under load
        self._lock = threading.Lock()

    def start(self) -> float:
        return self._stopwatch.monotonic()

    def full(self, started: float) -> None:
        with self._lock:
            self._durations.append(self._stopwatch.monotonic() - started)

    def short(self, started: float) -> None:
        # imported here, not at cold start (some 1.3 ms, `make bench`: the full path, a function's usual
        # first request, has no use for it); the time it takes at the first short path is waited less
        import statistics  # noqa: PLC0415

        with self._lock:
            target = statistics.median(self._durations) if self._durations else self._initial
            late = statistics.median(self._overshoots)
        remaining = target - late - (self._stopwatch.monotonic() - started)
        if remaining > 0:
            self._stopwatch.sleep(remaining)
            overshoot = self._stopwatch.monotonic() - started - (target - late)
            with self._lock:
                self._overshoots.append(max(0.0, overshoot))
