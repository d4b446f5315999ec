"""Budget periods: which window of time a charge counts against.

A calendar period is the hour, day or month that contains an instant *on the wall clock of a
configured time zone*: a "day" budget for a team in Tokyo resets at midnight in Tokyo, and a
"month" budget resets on the 1st, whatever the month's length. Boundaries are computed with
`zoneinfo` on local wall time and converted back to Unix seconds, so days that are 23 or 25
hours long (DST changes) and months of 28 to 31 days come out right. When a local midnight
does not exist (a DST jump at 00:00) the first instant after the gap starts the period
(PEP 495 `fold=0` semantics resolve it).

A rolling period is the last 3600 / 86400 / 30·86400 seconds before now: no reset moment for
a burst to exploit, at the cost of a less intuitive "month".

Standard library only (`zoneinfo`), so it runs in Pyodide; there the `tzdata` package must be
loaded for zones other than UTC, and an unknown zone is a configuration error (fail closed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PeriodUnit = Literal["hour", "day", "month"]
UNITS: tuple[PeriodUnit, ...] = ("hour", "day", "month")
ROLLING_SECONDS: dict[PeriodUnit, float] = {"hour": 3600.0, "day": 86400.0, "month": 30 * 86400.0}


def zone(name: str) -> tzinfo:
    """The named IANA zone; ValueError (not a silent UTC) when it is unknown."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


@dataclass(frozen=True, slots=True)
class Period:
    """One budget window; `start <= t < end` counts. Rolling windows have end = +inf."""

    start: float
    end: float


def _local_start(local: datetime, unit: PeriodUnit) -> datetime:
    if unit == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        return local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_local(start: datetime, unit: PeriodUnit) -> datetime:
    if unit == "hour":
        return start + timedelta(hours=1)
    if unit == "day":
        return start + timedelta(days=1)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def _to_unix(local_naive: datetime, tz: tzinfo) -> float:
    return local_naive.replace(tzinfo=tz, fold=0).timestamp()


# The latest period computed per (unit, zone): nearly every call falls into it, and the
# datetime arithmetic below is the dearest part of a budget check.
_LAST: dict[tuple[str, tzinfo], Period] = {}


def calendar_period(now: float, unit: PeriodUnit, tz: tzinfo) -> Period:
    last = _LAST.get((unit, tz))
    if last is not None and last.start <= now < last.end:
        return last
    period = _calendar_period(now, unit, tz)
    if len(_LAST) > 256:
        _LAST.clear()
    _LAST[(unit, tz)] = period
    return period


def _calendar_period(now: float, unit: PeriodUnit, tz: tzinfo) -> Period:
    """The calendar hour/day/month of `tz` containing `now`.

    The arithmetic is on naive local wall time (so "next day" is the next date, not +24 h),
    then converted back; an hour is measured back from `now` to the top of its local hour, so
    the repeated hour of a DST fall-back is two distinct periods rather than one of two hours.
    """
    local_aware = datetime.fromtimestamp(now, tz)
    if unit == "hour":
        # The top of the local hour, from the offset in force: right for half-hour zones too.
        offset = local_aware.utcoffset()
        shift = offset.total_seconds() if offset is not None else 0.0
        start = math.floor((now + shift) / 3600.0) * 3600.0 - shift
        return Period(start, start + 3600.0)
    local = local_aware.replace(tzinfo=None)
    start_local = _local_start(local, unit)
    start = _to_unix(start_local, tz)
    end = _to_unix(_next_local(start_local, unit), tz)
    if start > now:  # a wall time inside a DST gap resolved forward past `now`
        start = now
    return Period(start, end)


def period_for(now: float, unit: PeriodUnit, rolling: bool, tz: tzinfo) -> Period:
    if rolling:
        return Period(now - ROLLING_SECONDS[unit], float("inf"))
    return calendar_period(now, unit, tz)
