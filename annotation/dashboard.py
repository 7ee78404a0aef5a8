"""Pure maths of the manager's progress dashboard: daily series, medians and the completion estimate.

Django-free so it can be tested on plain numbers; annotation/selectors_dashboard.py gathers the rows.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

# The completion estimate uses the rate over this window: long enough not to jump with every submit or a lunch
# break, short enough to follow a team that grew or shrank this week.
ETA_WINDOW = dt.timedelta(days=3)
# With fewer rankings than this in the window the rate is too noisy to promise a date.
ETA_MIN_RANKINGS = 5


def daily_series(counts: dict[dt.date, int], *, end: dt.date, days: int) -> list[dict]:
    """`days` consecutive days ending at `end`, zero-filled: [{"day": "YYYY-MM-DD", "rankings": n}, ...]."""
    start = end - dt.timedelta(days=days - 1)
    return [
        {"day": (start + dt.timedelta(days=i)).isoformat(), "rankings": counts.get(start + dt.timedelta(days=i), 0)}
        for i in range(days)
    ]


def median_or_none(values: Iterable[float | None]) -> float | None:
    """Median of the values that are present (a ranking submitted through the API may carry no time)."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


@dataclass(frozen=True)
class Eta:
    remaining: int  # rankings still wanted to reach every prompt's overlap
    rate_per_hour: float | None  # over ETA_WINDOW; None when too few rankings fell in it
    hours: float | None  # remaining / rate; 0 when nothing remains
    finish_at: dt.datetime | None
    reason: str  # one sentence a manager can read

    def as_dict(self) -> dict:
        return {
            "remaining": self.remaining,
            "rate_per_hour": self.rate_per_hour,
            "hours": self.hours,
            "finish_at": self.finish_at.isoformat() if self.finish_at else None,
            "reason": self.reason,
        }


def completion_eta(
    *,
    remaining: int,
    in_window: int,
    first_in_window: dt.datetime | None,
    now: dt.datetime,
    window: dt.timedelta = ETA_WINDOW,
) -> Eta:
    """Estimate when the remaining rankings are in, from the `in_window` rankings submitted in the last `window`.

    The rate is those rankings divided by the time since the window's start, or since the first ranking in it when
    the project is younger (so a project started an hour ago is not diluted over three days), and never over less
    than an hour. A moving window rather than the last few submits keeps the estimate from jumping.
    """
    if remaining <= 0:
        return Eta(0, None, 0.0, now, "Every prompt has the rankings it needs.")
    days = window.total_seconds() / 86400
    if in_window < ETA_MIN_RANKINGS or first_in_window is None:
        return Eta(
            remaining,
            None,
            None,
            None,
            f"Not enough recent work to estimate: {in_window} ranking(s) in the last {days:g} day(s) "
            f"(at least {ETA_MIN_RANKINGS} are needed).",
        )
    span_h = max((now - max(now - window, first_in_window)).total_seconds() / 3600, 1.0)
    rate = in_window / span_h
    hours = remaining / rate
    return Eta(
        remaining,
        rate,
        hours,
        now + dt.timedelta(hours=hours),
        f"At {rate:.1f} rankings per hour (the rate over the last {days:g} days).",
    )
