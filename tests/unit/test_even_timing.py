"""Even timing: the short path of an answer waits until it has taken as long as the full path does."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from minid.domain.timing import EvenTiming


@dataclass
class FakeStopwatch:
    now: float = 0.0
    late: float = 0.0  # how late every sleep wakes
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds + self.late


def run(timing: EvenTiming, watch: FakeStopwatch, work: float, *, full: bool) -> float:
    started = timing.start()
    watch.now += work
    (timing.full if full else timing.short)(started)
    return watch.now - started


def test_before_any_full_path_the_short_path_waits_for_the_initial_estimate() -> None:
    watch = FakeStopwatch()
    timing = EvenTiming(watch, initial_seconds=0.15)
    assert run(timing, watch, 0.01, full=False) == pytest.approx(0.15)


def test_the_short_path_waits_for_the_median_of_the_full_paths_and_the_full_path_never_waits() -> None:
    watch = FakeStopwatch()
    timing = EvenTiming(watch, initial_seconds=0.0)
    for work in (0.020, 0.030, 0.025, 0.5):  # one slow outlier does not move the median much
        assert run(timing, watch, work, full=True) == pytest.approx(work)
    assert watch.slept == []
    assert run(timing, watch, 0.005, full=False) == pytest.approx(0.0275)
    assert run(timing, watch, 0.6, full=False) == pytest.approx(0.6)  # a short path that took longer does not wait


def test_sleeps_that_wake_late_are_allowed_for() -> None:
    watch = FakeStopwatch(late=0.004)
    timing = EvenTiming(watch, initial_seconds=0.0)
    run(timing, watch, 0.030, full=True)
    durations = [run(timing, watch, 0.010, full=False) for _ in range(5)]
    assert durations[0] == pytest.approx(0.034)  # the first is late by the sleep's lateness
    assert durations[2:] == pytest.approx([0.030] * 3)  # then the lateness is taken off the wait
