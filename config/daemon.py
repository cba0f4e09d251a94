"""The ``[daemon]`` table: how ``pawatch daemon`` schedules, spreads, stops and locks.

    [daemon]
    jitter = 30                # seconds: each run starts up to this much later (capped, below)
    grace_period = 30          # seconds in-flight checks get to finish on SIGTERM/SIGINT
    misfire_grace_time = 300   # seconds a run may start late (a busy or suspended host)
    deliver = "after-checks"   # or "off", or a schedule of its own: "1h", "0 9 * * mon-fri"
    heartbeat_interval = 5     # seconds between writes of <db>.daemon.json
    lock_timeout = 300         # seconds a writer waits for the database lock (run --wait)

The value checks raise ``ValueError("expected ...")`` like the other tables' checks; the loader
turns that into a ``ConfigError`` naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pawatch.config.model import Schedule

DELIVER_AFTER_CHECKS = "after-checks"
DELIVER_OFF = "off"
MAX_JITTER = 3600.0


@dataclass(frozen=True)
class DaemonSettings:
    """The ``[daemon]`` table (docs/deploy.md)."""

    jitter: float = 30.0  # seconds; never more than half a source's interval
    grace_period: float = 30.0
    misfire_grace_time: float = 300.0
    deliver: str = DELIVER_AFTER_CHECKS  # "after-checks" | "off" | a schedule ("1h", cron)
    heartbeat_interval: float = 5.0
    lock_timeout: float = 300.0

    @property
    def deliver_schedule(self) -> Schedule | None:
        """The delivery schedule, or None for "after-checks" and "off"."""
        if self.deliver in (DELIVER_AFTER_CHECKS, DELIVER_OFF):
            return None
        from pawatch.config.model import Schedule

        return Schedule.parse(self.deliver)


def _show(value: Any) -> str:
    from pawatch.config.loader import _show as show  # the loader imports this module first

    return show(value)


def _seconds(low: float, high: float, *, zero: bool = True) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and (low <= value <= high) and (zero or value > 0):
            return float(value)
        bound = f">= {low:g}" if zero else f"> {low:g}"
        raise ValueError(
            f"expected a number of seconds {bound} and <= {high:g}, got {_show(value)}"
        )

    return check


def _deliver(value: Any) -> str:
    if value in (DELIVER_AFTER_CHECKS, DELIVER_OFF):
        return str(value)
    if isinstance(value, str):
        from pawatch.config.model import Schedule

        try:
            return Schedule.parse(value).text
        except ValueError:
            pass
    raise ValueError(
        f"expected {DELIVER_AFTER_CHECKS!r}, {DELIVER_OFF!r}, an interval like '1h' or a "
        f"five-field cron expression like '0 9 * * mon-fri', got {_show(value)}"
    )


DAEMON_KEYS: dict[str, Callable[[Any], Any]] = {
    "jitter": _seconds(0, MAX_JITTER),
    "grace_period": _seconds(0, 3600),
    "misfire_grace_time": _seconds(1, 86400),
    "deliver": _deliver,
    "heartbeat_interval": _seconds(0.2, 3600),
    "lock_timeout": _seconds(0, 86400),
}

assert set(DAEMON_KEYS) == {f.name for f in fields(DaemonSettings)}
