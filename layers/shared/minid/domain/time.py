"""Time as the domain sees it: an injected clock, and dates as they are in Norway."""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

NORWAY = ZoneInfo("Europe/Oslo")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


def today_in_norway(clock: Clock) -> date:
    """The calendar date in Norway: ages and "this calendar year" are counted by it."""
    return clock.now().astimezone(NORWAY).date()
