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


def date_in_norway(moment: datetime) -> date:
    return moment.astimezone(NORWAY).date()


def today_in_norway(clock: Clock) -> date:
    """The calendar date in Norway: ages and "this calendar year" are counted by it."""
    return date_in_norway(clock.now())
