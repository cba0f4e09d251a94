"""Times and periods: one grammar for every interval pawatch reads, one format for every
time it stores.

- A *period* is a number and a unit: ``45s``, ``30m``, ``1.5h``, ``1d``, ``2w``. Schedules
  (``schedule = "6h"``, ``[daemon] deliver``, ``[email] digest``) and ``--since 7d`` read the
  same grammar; each use has bounds (schedules from ``SCHEDULE_MIN`` to ``SCHEDULE_MAX``,
  look-backs up to ``LOOKBACK_MAX``), and a value outside them, however large, is a
  ``ValueError`` with one line, never an ``OverflowError``.
- A *moment* (``--since``, ``--as-of``) is a period ago, a date (``2026-11-01``) or an ISO 8601
  time (``2026-11-01T10:00``, ``...Z``, ``...+03:00``; UTC when no offset is given).
- Stored times are ``format_time``: ISO 8601 UTC to the second with a ``Z``, sortable as text.

Neutral: imports nothing from the project's layers.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

SCHEDULE_MIN = timedelta(seconds=1)  # below a second is a typo (the daemon tests use 1s-3s)
SCHEDULE_MAX = timedelta(days=366)  # a schedule fires at least once a year
LOOKBACK_MAX = timedelta(days=100 * 366)  # `--since 100y`-ish: far past any stored history

_PERIOD_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STORED = "%Y-%m-%dT%H:%M:%SZ"


def _shown(text: str) -> str:
    """``text`` as an error message quotes it: at most 40 characters."""
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(period: timedelta) -> str:
    seconds = period.total_seconds()
    for unit in ("w", "d", "h", "m", "s"):
        if seconds >= UNIT_SECONDS[unit] and seconds % UNIT_SECONDS[unit] == 0:
            return f"{seconds / UNIT_SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


def looks_like_period(text: str) -> bool:
    """True when ``text`` has the shape of a period (``6h``), in range or not."""
    return bool(_PERIOD_RE.match(text))


def parse_period(
    text: str,
    *,
    minimum: timedelta | None = None,
    maximum: timedelta = LOOKBACK_MAX,
) -> timedelta:
    """``45s``/``30m``/``1.5h``/``1d``/``2w`` -> a timedelta > 0 (and >= ``minimum``, <=
    ``maximum``); anything else, or out of range, raises ValueError with one line."""
    match = _PERIOD_RE.match(text)
    if not match:
        shown = _shown(text)
        raise ValueError(f"expected a period like '45s', '30m', '6h', '1d' or '2w', got {shown!r}")
    seconds = float(match.group(1)) * UNIT_SECONDS[match.group(2)]
    value = match.group(1) + match.group(2)
    value = _shown(value)
    if seconds <= 0:
        raise ValueError(f"a period must be more than 0, got {value!r}")
    if minimum is not None and seconds < minimum.total_seconds():
        raise ValueError(f"a period must be at least {_describe(minimum)}, got {value!r}")
    if not math.isfinite(seconds) or seconds > maximum.total_seconds():
        raise ValueError(f"a period must be at most {_describe(maximum)}, got {value!r}")
    return timedelta(seconds=seconds)


def parse_schedule_period(text: str) -> timedelta:
    """A schedule's interval: a period from ``SCHEDULE_MIN`` to ``SCHEDULE_MAX``."""
    return parse_period(text, minimum=SCHEDULE_MIN, maximum=SCHEDULE_MAX)


def parse_moment(text: str, now: datetime | None = None, *, end_of_day: bool = False) -> datetime:
    """``7d``/``12h`` (that long before ``now``), a date ``2026-11-01`` or an ISO 8601 time ->
    an aware UTC datetime. A bare date is the start of that day, or its last second with
    ``end_of_day`` (``--as-of``). Raises ValueError with one line on anything else."""
    now = now or datetime.now(UTC)
    text = text.strip()
    if looks_like_period(text):
        return now - parse_period(text, maximum=LOOKBACK_MAX)
    try:
        if _DATE_RE.match(text):
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if end_of_day:
                moment += timedelta(days=1, seconds=-1)
        else:
            moment = datetime.fromisoformat(text)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        shown = _shown(text)
        raise ValueError(
            f"expected a period like '7d', '12h', a date like '2026-11-01' or an ISO 8601 time "
            f"like '2026-11-01T10:00Z', got {shown!r}"
        ) from None


def format_time(moment: datetime) -> str:
    """ISO 8601 UTC with a ``Z``, to the second: sortable as text."""
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def parse_time(text: str) -> datetime:
    """A stored time (``format_time``) back to an aware UTC datetime."""
    return datetime.strptime(text, _STORED).replace(tzinfo=UTC)
