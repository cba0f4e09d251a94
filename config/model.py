"""Typed settings. Everything the rest of pawatch knows about its configuration is here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from pawatch.times import SCHEDULE_MAX, looks_like_period, parse_schedule_period


@dataclass(frozen=True)
class OptionSpec:
    """One per-source parser option (``[sources.options]``): its type, what it does, and
    whether the parser needs it. Parsers declare theirs; the config loader checks them."""

    type: type | tuple[type, ...]
    help: str
    required: bool = False
    # Called with the value at load (after the type check); raises ValueError("expected ...")
    # for a value of the right type that cannot work (a regex that does not compile).
    check: Callable[[Any], object] | None = None


@cache  # about 10 ms a line; a config names few distinct ones
def _fires_every_year(cron: str) -> bool:
    """True when, from the start of every month of a 28-year cycle (leap years and weekdays
    repeat), the next fire time is at most ``SCHEDULE_MAX`` away."""
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron, timezone="UTC")
    for year in range(2027, 2055):
        for month in range(1, 13):
            start = datetime(year, month, 1, tzinfo=UTC)
            fire = trigger.get_next_fire_time(None, start)
            if fire is None or fire - start > SCHEDULE_MAX:
                return False
    return True


@dataclass(frozen=True)
class Schedule:
    """When a source is due: a fixed interval (``6h``) or a crontab expression (``0 9 * * mon``)."""

    text: str
    interval: timedelta | None = None
    cron: str | None = None

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Parse ``30m``/``6h``/``1d`` (from ``SCHEDULE_MIN`` to ``SCHEDULE_MAX``, see
        pawatch.times) or a five-field crontab line that fires within a year; raise ValueError
        with one line otherwise."""
        if looks_like_period(text):
            return cls(text=text.strip(), interval=parse_schedule_period(text))
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(
                f"{text!r} is neither an interval like '30m', '6h', '1d' "
                "nor a five-field cron expression like '0 */6 * * *'"
            )
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(text, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"bad cron expression {text!r}: {exc}") from None
        if not _fires_every_year(" ".join(fields)):
            raise ValueError(
                f"cron expression {text!r} does not fire at least once a year "
                "(a date that never comes, like '0 0 31 2 *', or a rare one, like 29 February)"
            )
        return cls(text=" ".join(fields), cron=" ".join(fields))

    def trigger(self, timezone: str = "UTC") -> Any:
        """The APScheduler trigger for this schedule."""
        if self.interval is not None:
            from apscheduler.triggers.interval import IntervalTrigger

            return IntervalTrigger(seconds=self.interval.total_seconds(), timezone=timezone)
        from apscheduler.triggers.cron import CronTrigger

        assert self.cron is not None
        return CronTrigger.from_crontab(self.cron, timezone=timezone)

    def next_due(
        self, last_check: datetime | None, now: datetime, timezone: str = "UTC"
    ) -> datetime:
        """When a source last checked at ``last_check`` is next due (``now`` if never)."""
        if last_check is None:
            return now
        if self.interval is not None:
            return last_check + self.interval
        # the first fire time strictly after the last check (checks are stored to the second)
        fire = self.trigger(timezone).get_next_fire_time(None, last_check + timedelta(seconds=1))
        return fire.astimezone(UTC) if fire is not None else datetime.max.replace(tzinfo=UTC)

    def is_due(self, last_check: datetime | None, now: datetime, timezone: str = "UTC") -> bool:
        """True when a source last checked at ``last_check`` should be checked at ``now``."""
        return self.next_due(last_check, now, timezone) <= now


@dataclass(frozen=True)
class StorageSettings:
    path: str = "pawatch.db"


@dataclass(frozen=True)
class HttpSettings:
    user_agent: str = "pawatch/0.1 (+https://github.com/pawatch/pawatch; monitoring bot)"
    per_host_concurrency: int = 2
    per_host_delay: float = 1.0  # seconds between the starts of two requests to one host
    global_concurrency: int = 16
    timeout: float = 30.0  # total deadline for one request, retries excluded
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    max_bytes: int = 20_000_000  # as config/default.toml and the README say (the Duma's data.json)
    parse_timeout: float = 5.0  # seconds one page may take to parse; longer is parse_broken
    max_redirects: int = 5
    retries: int = 3  # extra attempts after the first
    backoff_base: float = 1.0  # first retry waits about this long, doubling each time
    backoff_max: float = 60.0
    retry_after_max: float = 300.0  # a longer Retry-After gives up instead of waiting
    respect_robots: bool = True
    # Reuse a connection (idle at most 5 s) for the next request to the same host: one TCP
    # and TLS handshake for several pages of a site. Reads set TCP_QUICKACK (Linux), so a
    # server that writes headers and body in two sends without TCP_NODELAY does not stall
    # each response ~40 ms on the client's delayed ACK (see pawatch.scraper.transport).
    keep_alive: bool = True
    # Processes a large run fetches and parses in (0: one per core; 1: the run's own process
    # only). Each gets a share of every host's concurrency: politeness is per host, not per
    # process.
    fetch_processes: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    proxy: str | None = None
    ca_bundle: str | None = None


@dataclass(frozen=True)
class Source:
    id: str
    url: str
    parser: str
    schedule: Schedule = field(default_factory=lambda: Schedule.parse("6h"))
    delegation: str | None = None
    enabled: bool = True
    confirm: int = 1  # consecutive good checks before a change is reported
    failing_after: int = 3  # consecutive failed checks before a source_failing alert
    collapse_ratio: float = 0.5  # a member list shrinking below this share is a broken parse
    headers: dict[str, str] = field(default_factory=dict)
    user_agent: str | None = None
    proxy: str | None = None
    ca_bundle: str | None = None
    encoding: str | None = None  # force this charset instead of header/<meta>/detection
    timeout: float | None = None
    options: dict[str, Any] = field(default_factory=dict)  # parser options ([sources.options])

    @property
    def host(self) -> str:
        from urllib.parse import urlsplit

        return (urlsplit(self.url).hostname or "").lower()


SECURITY_MODES = ("starttls", "tls", "none")
_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


@dataclass(frozen=True)
class EmailSettings:
    """The ``[email]`` table: where reports are mailed (docs/email.md)."""

    smtp_host: str
    sender: str
    recipients: tuple[str, ...] = ()  # get every report
    delegation_recipients: dict[str, tuple[str, ...]] = field(default_factory=dict)
    smtp_port: int | None = None  # None: 587 for starttls, 465 for tls, 25 for none
    security: str = "starttls"  # one of SECURITY_MODES
    username: str | None = None
    password_env: str | None = None  # the name of the variable holding the password
    timeout: float = 30.0
    digest: timedelta | None = None  # at most one email per this period; None: every run
    health_repeat: timedelta | None = timedelta(days=1)  # None: never repeat
    subject_prefix: str = "pawatch"
    ca_bundle: str | None = None  # extra CA certificates to trust for TLS
    max_resends: int = 3  # re-sends of an unconfirmed message before it is marked failed

    @property
    def port(self) -> int:
        return self.smtp_port if self.smtp_port is not None else _DEFAULT_PORTS[self.security]


@dataclass(frozen=True)
class ReportSettings:
    """The ``[report]`` table (docs/email.md)."""

    base_url: str | None = None  # a web view of the database: links to stored snapshots


@dataclass(frozen=True)
class FeedSettings:
    """The ``[feed]`` table: the Atom feed of changes (README, "The feed")."""

    path: str | None = None  # rewritten after every run/daemon cycle when set
    title: str = "pawatch: changes in the CSTO PA national delegations"
    id: str | None = None  # the feed's Atom id; default: derived from link or the database
    link: str | None = None  # where the feed is published (its rel="self" link)
    max_entries: int = 50


CHANNEL_KINDS = ("email", "webhook", "apprise")


@dataclass(frozen=True)
class ChannelSettings:
    """One ``[[channels]]`` table: where reports go besides ``[email]`` (docs/email.md)."""

    name: str
    kind: str  # one of CHANNEL_KINDS
    url: str  # webhook: http(s) URL; apprise: an Apprise URL; email: mailto:address[,address]
    delegations: tuple[str, ...] = ()  # only changes about these delegations (empty: all)
    kinds: tuple[str, ...] = ()  # only these event kinds (empty: all)
    timeout: float = 30.0


# The [daemon] table: how `pawatch daemon` schedules, spreads, stops and locks (docs/deploy.md).
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
        return Schedule.parse(self.deliver)


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings = field(default_factory=StorageSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    sources: tuple[Source, ...] = ()
    timezone: str = "UTC"
    config_files: tuple[str, ...] = ()  # the files these settings came from, for messages
    email: EmailSettings | None = None  # None: reports go to stdout
    daemon: DaemonSettings = field(default_factory=DaemonSettings)  # [daemon] table
    report: ReportSettings = field(default_factory=ReportSettings)  # [report] table
    feed: FeedSettings = field(default_factory=FeedSettings)  # [feed] table
    channels: tuple[ChannelSettings, ...] = ()  # [[channels]] tables

    def source(self, source_id: str) -> Source:
        for src in self.sources:
            if src.id == source_id:
                return src
        raise KeyError(source_id)

    @property
    def enabled_sources(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.enabled)

    @property
    def subject_prefix(self) -> str:
        """What every report's subject starts with (``[email] subject_prefix``, or its
        default without an ``[email]`` table): channels and stdout reports use it too."""
        return self.email.subject_prefix if self.email else EmailSettings.subject_prefix
