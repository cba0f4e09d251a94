"""Change reports: events grouped by delegation, then news, then monitoring health.

``build_report`` turns event rows (``storage.outbox.events_by_id``/``events_since``) and the
current source problems (``storage.outbox.problems``) into a ``Report``; ``render_text``,
``render_html`` (Jinja2 with autoescape: scraped text never becomes markup) and
``render_json`` (format ``pawatch-report/1``, documented in docs/email.md) print it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pawatch.display import printable
from pawatch.domain import CHANGE_KINDS, HEALTH_KINDS
from pawatch.times import parse_moment

if TYPE_CHECKING:
    import jinja2

JSON_FORMAT = "pawatch-report/1"

# Most important first (news and health have sections of their own); unknown kinds last.
KIND_ORDER = tuple(kind for kind in CHANGE_KINDS if kind != "news")
SUBJECT_MAX = 140  # characters before the subject's list of changes is cut with "..."

_SPACE_RE = re.compile(r"\s+")


def _clean(value: str | None, limit: int = 200) -> str:
    """One line, at most ``limit`` characters: safe for a subject or a list line."""
    text = _SPACE_RE.sub(" ", printable(value or "")).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _arrow(old: str | None, new: str | None) -> str:
    return f"{_clean(old, 80) or '(none)'} -> {_clean(new, 80) or '(none)'}"


@dataclass(frozen=True)
class ReportEvent:
    id: int
    kind: str
    detected_at: str
    source_id: str | None
    delegation: str | None
    attribute: str | None
    old: str | None
    new: str | None
    url: str | None
    before_snapshot: int | None
    after_snapshot: int | None
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ReportEvent:
        details = row.get("details") or {}
        if isinstance(details, str):
            details = json.loads(details)
        return cls(
            id=row["id"],
            kind=row["kind"],
            detected_at=row["detected_at"],
            source_id=row.get("source_id"),
            delegation=row.get("delegation"),
            attribute=row.get("attribute"),
            old=row.get("old"),
            new=row.get("new"),
            url=row.get("url"),
            before_snapshot=row.get("before_snapshot"),
            after_snapshot=row.get("after_snapshot"),
            details=details,
        )

    @property
    def rank(self) -> int:
        return KIND_ORDER.index(self.kind) if self.kind in KIND_ORDER else len(KIND_ORDER)

    @property
    def summary(self) -> str:
        """What changed, in one line: 'composition 6 -> 7', 'member added: Farida Newcomer'."""
        k, attr = self.kind, self.attribute or ""
        if k == "composition":
            chamber = attr.removeprefix("seats:")
            label = "composition" if chamber in ("total", "") else f"composition ({chamber})"
            return f"{label} {_arrow(self.old, self.new)}"
        if k == "representative":
            label = {"plenipotentiary_role": "representative's role", "head": "head"}.get(
                attr, "representative"
            )
            return f"{label} {_arrow(self.old, self.new)}"
        if k == "member_renamed":
            return f"member renamed {_arrow(self.old, self.new)}"
        if k.endswith("_added") or k == "news":
            label = "news" if k == "news" else k.replace("_", " ")
            return f"{label}: {_clean(self.new, 120)}"
        if k.endswith("_removed"):
            return f"{k.replace('_', ' ')}: {_clean(self.old, 120)}"
        if k == "page_changed":
            return "page text changed"
        if k == "source_failing":
            return f"{self.source_id} failing: {_clean(self.new, 120)}"
        if k == "source_recovered":
            return f"{self.source_id} recovered"
        if k == "parse_broken":
            return f"{self.source_id} parse broken: {_clean(self.new, 120)}"
        if k == "parse_recovered":
            return f"{self.source_id} parse recovered"
        return f"{k.replace('_', ' ')} {_arrow(self.old, self.new)}"

    @property
    def headline(self) -> str:
        """The summary with the delegation in front: 'KG composition 6 -> 7'."""
        if self.delegation and self.kind not in HEALTH_KINDS and self.kind != "news":
            return f"{self.delegation} {self.summary}"
        return self.summary

    @property
    def commands(self) -> list[str]:
        """Commands that show the snapshots behind this event."""
        out = []
        if self.after_snapshot is not None:
            out.append(f"pawatch show {self.after_snapshot}")
        if self.before_snapshot is not None and self.after_snapshot is not None:
            out.append(f"pawatch diff {self.before_snapshot} {self.after_snapshot}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "detected_at": self.detected_at,
            "delegation": self.delegation,
            "source_id": self.source_id,
            "attribute": self.attribute,
            "old": self.old,
            "new": self.new,
            "url": self.url,
            "before_snapshot": self.before_snapshot,
            "after_snapshot": self.after_snapshot,
            "summary": self.summary,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class Problem:
    """A source failing or with a broken parse, now."""

    source_id: str
    url: str | None
    delegation: str | None
    condition: str  # failing | broken
    since: str | None
    error: str | None
    consecutive_failures: int = 0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Problem:
        return cls(
            source_id=row["source_id"],
            url=row.get("url"),
            delegation=row.get("delegation"),
            condition=row["condition"],
            since=row.get("since"),
            error=row.get("error"),
            consecutive_failures=row.get("consecutive_failures") or 0,
        )

    @property
    def summary(self) -> str:
        since = f" since {self.since}" if self.since else ""
        fails = (
            f", {self.consecutive_failures} failed checks in a row"
            if self.condition == "failing"
            else ""
        )
        return f"{self.source_id} {self.condition}{since}{fails}: {_clean(self.error, 200)}"

    def as_json(self) -> dict[str, Any]:
        return {
            "source_id": self.source_id,
            "url": self.url,
            "delegation": self.delegation,
            "condition": self.condition,
            "since": self.since,
            "error": self.error,
            "consecutive_failures": self.consecutive_failures,
        }


@dataclass(frozen=True)
class Group:
    delegation: str | None  # None: changes not about one delegation
    events: tuple[ReportEvent, ...]


@dataclass(frozen=True)
class Report:
    generated_at: str
    events: tuple[ReportEvent, ...]
    problems: tuple[Problem, ...] = ()
    channel: str = "all"
    prefix: str = "pawatch"
    reminder: bool = False  # sent for health repeats: only problems, no new events

    @property
    def changes(self) -> list[ReportEvent]:
        return [e for e in self.events if e.kind not in HEALTH_KINDS]

    @property
    def groups(self) -> list[Group]:
        """Delegation changes, grouped; the group with the most important change first."""
        by: dict[str | None, list[ReportEvent]] = {}
        for e in self.changes:
            if e.kind != "news":
                by.setdefault(e.delegation, []).append(e)
        groups = [Group(d, tuple(sorted(es, key=_order))) for d, es in by.items()]
        return sorted(groups, key=lambda g: (g.delegation is None, g.events[0].rank, g.delegation))

    @property
    def news(self) -> list[ReportEvent]:
        return [e for e in self.events if e.kind == "news"]

    @property
    def health_events(self) -> list[ReportEvent]:
        return [e for e in self.events if e.kind in HEALTH_KINDS]

    @property
    def empty(self) -> bool:
        return not self.events and not self.problems

    @property
    def subject(self) -> str:
        """'pawatch: 2 changes - KG composition 6 -> 7, news: ...' (one line, no markup)."""
        prefix = self.prefix if self.channel == "all" else f"{self.prefix} [{self.channel}]"
        counts = []
        n_changes, n_health = len(self.changes), len(self.health_events)
        if n_changes:
            counts.append(_plural(n_changes, "change"))
        if n_health:
            counts.append(_plural(n_health, "health alert"))
        if not counts and self.problems:
            n = len(self.problems)
            counts.append(f"{_plural(n, 'source')} need{'s' if n == 1 else ''} attention")
        if not counts:
            return f"{prefix}: no changes"
        changes = sorted((e for e in self.changes if e.kind != "news"), key=_order)
        ordered = changes + self.news + self.health_events
        parts = list(dict.fromkeys(e.headline for e in ordered))
        if not parts:
            parts = [f"{p.source_id} {p.condition}" for p in self.problems]
        head = f"{prefix}: {', '.join(counts)} - "
        shown: list[str] = []
        for part in parts:
            if shown and len(head) + len(", ".join([*shown, part])) > SUBJECT_MAX:
                shown.append("...")
                break
            shown.append(part)
        return _clean(head + ", ".join(shown), 998)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": JSON_FORMAT,
            "generated_at": self.generated_at,
            "channel": self.channel,
            "subject": self.subject,
            "counts": {
                "changes": len(self.changes),
                "news": len(self.news),
                "health_events": len(self.health_events),
                "problems": len(self.problems),
            },
            "delegations": [
                {"delegation": g.delegation, "events": [e.as_json() for e in g.events]}
                for g in self.groups
            ],
            "news": [e.as_json() for e in self.news],
            "health": {
                "events": [e.as_json() for e in self.health_events],
                "problems": [p.as_json() for p in self.problems],
            },
        }


def _order(e: ReportEvent) -> tuple[int, bool, int]:
    return (e.rank, e.attribute != "seats:total", e.id)  # the total before each chamber


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def build_report(
    events: Iterable[Mapping[str, Any]],
    problems: Iterable[Mapping[str, Any]] = (),
    *,
    generated_at: datetime | None = None,
    channel: str = "all",
    prefix: str = "pawatch",
    reminder: bool = False,
) -> Report:
    moment = (generated_at or datetime.now(UTC)).astimezone(UTC)
    return Report(
        generated_at=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        events=tuple(ReportEvent.from_row(r) for r in events),
        problems=tuple(Problem.from_row(p) for p in problems),
        channel=channel,
        prefix=prefix,
        reminder=reminder,
    )


def _http_only(url: str | None) -> str | None:
    """A link target only for http(s) URLs: no ``javascript:`` from a scraped page."""
    if url and urlsplit(url).scheme in ("http", "https"):
        return url
    return None


@cache
def _environment() -> jinja2.Environment:
    import jinja2  # here: a query command that never renders does not pay for the import

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pawatch", "templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), disabled_extensions=("txt",), default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["http_only"] = _http_only
    return env


def render_text(report: Report) -> str:
    return printable(_environment().get_template("report.txt").render(r=report))


def render_html(report: Report) -> str:
    return printable(_environment().get_template("report.html").render(r=report))


def render_json(report: Report) -> str:
    return json.dumps(report.as_json(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"


RENDERERS = {"text": render_text, "html": render_html, "json": render_json}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """'7d', '12h', '30m', '2w' back from now, or a date/time '2026-11-01[T10:00[Z]]' (UTC)."""
    return parse_moment(text, now)
