"""When sources are due: schedule periods, bounded jitter (``JitterTrigger`` for APScheduler 3),
the next due time of a source and which sources ``run --due`` checks. The daemon and
``run --due`` share these rules."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from pawatch.config import Schedule, Source
from pawatch.storage import Store
from pawatch.storage.store import parse_time

DUE_SLACK_MAX = 60.0  # `run --due`: a source due within this (or 10% of its period) counts


def utcnow() -> datetime:
    return datetime.now(UTC)


def schedule_period(schedule: Schedule, timezone: str, now: datetime | None = None) -> float:
    """Seconds between two runs: the interval, or the gap between a cron line's next two."""
    if schedule.interval is not None:
        return schedule.interval.total_seconds()
    now = now or utcnow()
    trigger = schedule.trigger(timezone)
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first) if first is not None else None
    if first is None or second is None:
        return 86400.0
    return float((second - first).total_seconds())


def effective_jitter(schedule: Schedule, jitter: float, timezone: str) -> float:
    """``[daemon] jitter``, capped at half the source's period (a 2 s schedule: 1 s at most)."""
    return max(0.0, min(jitter, schedule_period(schedule, timezone) / 2))


def next_due(
    schedule: Schedule, last_check: datetime | None, now: datetime, timezone: str
) -> datetime:
    """When a source last checked at ``last_check`` is next due (``now`` if never checked)."""
    return schedule.next_due(last_check, now, timezone)


def last_checks(store: Store) -> dict[str, datetime]:
    """Each source's last check (its latest fetch_log ``started_at``)."""
    return {s.id: parse_time(s.last_check) for s in store.statuses() if s.last_check}


def due_sources(
    sources: Iterable[Source],
    checked: dict[str, datetime],
    now: datetime,
    timezone: str,
    *,
    slack: bool = True,
) -> list[Source]:
    """The sources whose schedule says they are due at ``now`` (for ``pawatch run --due``).

    With ``slack`` a source due within min(60 s, 10% of its period) counts as due, so a crontab
    line every N minutes does not skip a source whose last check started a few seconds late.
    """
    out = []
    for src in sources:
        margin = 0.0
        if slack:
            margin = min(DUE_SLACK_MAX, schedule_period(src.schedule, timezone, now) * 0.1)
        due = next_due(src.schedule, checked.get(src.id), now, timezone)
        if due <= now + timedelta(seconds=margin):
            out.append(src)
    return out


class JitterTrigger(BaseTrigger):  # type: ignore[misc]
    """A trigger whose every fire time is its base trigger's plus ``uniform(0, jitter)`` s.

    The base sequence is computed from un-jittered times, so the jitter never accumulates
    (APScheduler 3.x's ``jitter=`` on an IntervalTrigger adds it to the previous jittered
    time: a 2 s schedule with 1 s of jitter would run every 2.5 s on average).
    """

    def __init__(self, base: Any, jitter: float) -> None:
        self.base = base
        self.jitter = jitter
        self._bases: dict[datetime, datetime] = {}  # jittered fire time -> its base time

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        base_prev = None
        if previous_fire_time is not None:
            base_prev = self._bases.get(previous_fire_time, previous_fire_time)
        base_next = self.base.get_next_fire_time(base_prev, now)
        return None if base_next is None else self.jittered(base_next)

    def jittered(self, base: datetime) -> datetime:
        fire = base + timedelta(seconds=random.uniform(0, self.jitter)) if self.jitter else base
        self._bases[fire] = base
        if len(self._bases) > 16:
            for key in list(self._bases)[:-8]:
                del self._bases[key]
        return fire

    def __str__(self) -> str:
        return f"{self.base} + jitter <= {self.jitter:g}s"

    def __repr__(self) -> str:
        return f"<JitterTrigger {self.base!r} jitter={self.jitter:g}>"
