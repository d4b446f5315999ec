"""Calendar periods in a time zone: month ends, leap years, DST days, half-hour offsets."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpushield_edge.keyguard.periods import UNITS, calendar_period, period_for, zone


def ts(text: str, tz: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


@pytest.mark.parametrize(("now", "start", "end"), [
    ("2026-01-31 23:59:59", "2026-01-01 00:00", "2026-02-01 00:00"),
    ("2026-02-15 12:00:00", "2026-02-01 00:00", "2026-03-01 00:00"),
    ("2028-02-29 08:00:00", "2028-02-01 00:00", "2028-03-01 00:00"),  # leap year
    ("2026-12-31 23:00:00", "2026-12-01 00:00", "2027-01-01 00:00"),  # year end
])
def test_month_periods_follow_the_calendar(now: str, start: str, end: str) -> None:
    tz = "Asia/Tokyo"
    period = calendar_period(ts(now, tz), "month", zone(tz))
    assert (period.start, period.end) == (ts(start, tz), ts(end, tz))


def test_days_around_dst_changes_are_23_and_25_hours() -> None:
    paris = zone("Europe/Paris")
    spring = calendar_period(ts("2026-03-29 12:00", "Europe/Paris"), "day", paris)
    autumn = calendar_period(ts("2026-10-25 12:00", "Europe/Paris"), "day", paris)
    assert spring.end - spring.start == 23 * 3600
    assert autumn.end - autumn.start == 25 * 3600


def test_a_day_resets_at_local_midnight_not_utc() -> None:
    tokyo = zone("Asia/Tokyo")
    # 2026-01-01 16:00 UTC is already 2 January in Tokyo.
    period = calendar_period(ts("2026-01-01 16:00", "UTC"), "day", tokyo)
    assert period.start == ts("2026-01-02 00:00", "Asia/Tokyo")


def test_hours_in_half_hour_zones_start_at_local_top_of_hour() -> None:
    period = calendar_period(ts("2026-05-01 10:45", "Asia/Kolkata"), "hour", zone("Asia/Kolkata"))
    assert period.start == ts("2026-05-01 10:00", "Asia/Kolkata")
    assert period.end - period.start == 3600


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        zone("Mars/Olympus_Mons")


@given(st.floats(min_value=0, max_value=4e9), st.sampled_from(UNITS),
       st.sampled_from(["UTC", "Europe/Paris", "America/St_Johns", "Australia/Lord_Howe",
                        "Pacific/Chatham", "Asia/Kolkata"]))
def test_every_instant_lies_in_its_period(now: float, unit: str, tz: str) -> None:
    period = calendar_period(now, unit, zone(tz))  # type: ignore[arg-type]
    assert period.start <= now < period.end
    # The next period starts exactly where this one ends: no gap, no overlap.
    following = calendar_period(period.end, unit, zone(tz))  # type: ignore[arg-type]
    assert following.start == period.end


def test_rolling_periods_are_the_last_window() -> None:
    period = period_for(100_000.0, "day", True, zone("UTC"))
    assert period.start == 100_000.0 - 86400
