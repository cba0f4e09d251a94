"""Change reports a recipient understands at a glance.

One item per delegation-level change ("Supreme Council: 6 -> 7 seats"), however many sources
saw it, grouped by delegation (the country's name from the registry), each with the sources
that saw it, their links and the lines of each page before and after (quoted from the stored
snapshots); then news; then monitoring health (short, at the end).

``build_report`` turns event rows (``storage.outbox.events_by_id``/``events_since``) and the
current source problems (``storage.outbox.problems``) into a ``Report``; ``render_text``,
``render_html`` (Jinja2 with autoescape: scraped text never becomes markup) and
``render_json`` (format ``pawatch-report/2``, documented in docs/email.md) print it.

Scraped text shown to people (text, HTML, subject) goes through ``pawatch.display.printable``
(no terminal escapes or other control characters) and is shortened; JSON carries it exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pawatch.config.registry import load_registry
from pawatch.display import printable, redact_url
from pawatch.domain import CHANGE_KINDS, HEALTH_KINDS, fold_text
from pawatch.storage.queries import DelegationChange
from pawatch.times import format_time, parse_moment

if TYPE_CHECKING:
    import jinja2

    from pawatch.evidence import Excerpt
    from pawatch.storage import Store

JSON_FORMAT = "pawatch-report/2"

# Most important first (news and health have sections of their own); unknown kinds last.
KIND_ORDER = tuple(kind for kind in CHANGE_KINDS if kind != "news")
SUBJECT_MAX = 120  # characters of a whole subject, prefix included
SNAPSHOT_PATH = "/pawatch/snapshots/{id}"  # under [report] base_url: Datasette's row page

_SPACE_RE = re.compile(r"\s+")


def clean(value: str | None, limit: int = 200) -> str:
    """Scraped text for people: no control characters, one line, at most ``limit``
    characters (cut with "…")."""
    text = _SPACE_RE.sub(" ", printable(value or "")[: limit * 4]).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


# ------------------------------------------------------------------ names from the registry


def delegation_name(delegation: str | None) -> str:
    """'Kyrgyzstan' for ``KG``; the id itself for a delegation the registry does not know."""
    if delegation is None:
        return "Other changes"
    registry = load_registry()
    return registry.delegation(delegation).country if registry.has(delegation) else delegation


def chamber_name(delegation: str | None, chamber: str) -> str:
    """'Supreme Council' for (``KG``, ``supreme-council``); the id made readable otherwise."""
    registry = load_registry()
    if delegation is not None and registry.has(delegation):
        try:
            return registry.delegation(delegation).chamber(chamber).name_en
        except KeyError:
            pass
    return chamber.replace("-", " ").capitalize()


# Findings about the sources rather than changes of a delegation: reported with the health of
# the sources, in the short section at the end (issue 11), not as change items.
FINDING_KINDS = ("sources_disagree", "sources_agree")
MONITORING_KINDS = (*HEALTH_KINDS, *FINDING_KINDS)
_CHAMBER_COUNT_RE = re.compile(r"\b([a-z][a-z0-9]*(?:-[a-z0-9]+)+|[a-z]+) (\d+)\b")
_DISPUTED = {
    "seats": "seats",
    "members": "members (stated count vs names listed)",
    "plenipotentiary": "plenipotentiary representative",
    "head": "head of delegation",
}


def readable_counts(delegation: str | None, value: str) -> str:
    """'house-of-representatives 7, total 11' -> 'House of Representatives 7, total 11'."""

    def name(m: re.Match[str]) -> str:
        chamber = m.group(1)
        if chamber in ("total", "stated", "listed"):
            return m.group(0)
        return f"{chamber_name(delegation, chamber)} {m.group(2)}"

    return _CHAMBER_COUNT_RE.sub(name, value)


_HEADLINES = {
    "member_added": "New member: {new}",
    "member_removed": "Member no longer listed: {old}",
    "member_renamed": "Member's name now written: {new} (was {old})",
    "website_added": "New website: {new}",
    "website_removed": "Website no longer listed: {old}",
    "delegation_added": "Delegation appeared: {new}",
    "delegation_removed": "Delegation no longer listed: {old}",
    "page_changed": "The page's text changed",
}
_PERSON = {
    "plenipotentiary": "plenipotentiary representative",
    "plenipotentiary_role": "plenipotentiary representative's role",
    "head": "head of delegation",
}


# ------------------------------------------------------------------ events and changes


@dataclass(frozen=True)
class ReportEvent:
    """One event row as recorded (one source's observation)."""

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
    def summary(self) -> str:
        """A health event in one line: 'kg-kenesh failing: HTTP 503'."""
        k, source = self.kind, self.source_id or "?"
        if k == "source_failing":
            return f"{source} failing: {clean(self.new, 120)}"
        if k == "source_recovered":
            return f"{source} recovered"
        if k == "parse_broken":
            return f"{source} cannot be read: {clean(self.new, 120)}"
        if k == "parse_recovered":
            return f"{source} can be read again"
        if k in FINDING_KINDS:
            where = delegation_name(self.delegation)
            what = _DISPUTED.get(self.attribute or "", self.attribute or "a value")
            if k == "sources_agree":
                return f"{where}: the sources agree again on the {what}"
            competing = self.details.get("competing") or []
            sides = "; ".join(
                f"{c.get('source')} says {readable_counts(self.delegation, str(c.get('value')))}"
                for c in competing
                if isinstance(c, Mapping)
            )
            return clean(f"{where}: the sources disagree on the {what}: {sides}", 400)
        if k == "source_moved":  # redirected to another host: the final URL in `new`
            return f"{source} moved: redirected to {clean(redact_url(self.new or '?'), 200)}"
        return f"{source} {k.replace('_', ' ')}"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "detected_at": self.detected_at,
            "delegation": self.delegation,
            "source": self.source_id,
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
class Sighting:
    """One source that saw a change: where, when, and the page lines before and after."""

    event_id: int
    source: str | None
    url: str | None
    detected_at: str
    before_snapshot: int | None
    after_snapshot: int | None
    excerpt: Excerpt | None = None

    @property
    def commands(self) -> list[str]:
        """Commands that show the snapshots (the operator's text output only)."""
        out = []
        if self.after_snapshot is not None:
            out.append(f"pawatch show {self.after_snapshot}")
        if self.before_snapshot is not None and self.after_snapshot is not None:
            out.append(f"pawatch diff {self.before_snapshot} {self.after_snapshot}")
        return out

    def as_json(self, base_url: str | None) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "source": self.source,
            "url": self.url,
            "detected_at": self.detected_at,
            "before_snapshot": self.before_snapshot,
            "after_snapshot": self.after_snapshot,
            "before_snapshot_url": snapshot_url(base_url, self.before_snapshot),
            "after_snapshot_url": snapshot_url(base_url, self.after_snapshot),
            "evidence": None
            if self.excerpt is None
            else {"before": list(self.excerpt.before), "after": list(self.excerpt.after)},
        }


@dataclass(frozen=True)
class ChangeItem:
    """One change of a delegation (or one news item), with every source that saw it."""

    kind: str
    delegation: str | None
    attribute: str | None
    old: str | None
    new: str | None
    sightings: tuple[Sighting, ...]
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def event_ids(self) -> tuple[int, ...]:
        return tuple(s.event_id for s in self.sightings)

    @property
    def first_detected(self) -> str:
        return min(s.detected_at for s in self.sightings)

    @property
    def last_detected(self) -> str:
        return max(s.detected_at for s in self.sightings)

    @property
    def rank(self) -> int:
        return KIND_ORDER.index(self.kind) if self.kind in KIND_ORDER else len(KIND_ORDER)

    @property
    def chamber(self) -> str | None:
        attr = self.attribute or ""
        return attr.removeprefix("seats:") if attr.startswith("seats:") else None

    @property
    def headline(self) -> str:
        """What changed, in words: 'Supreme Council: 6 -> 7 seats',
        'New plenipotentiary representative: Gafurzoda Abdukhalil'."""
        k, old, new = self.kind, clean(self.old, 120), clean(self.new, 120)
        if k == "composition":
            chamber = self.chamber or "total"
            label = "Seats in all" if chamber == "total" else chamber_name(self.delegation, chamber)
            if self.old is None:
                return f"{label}: {new} seats"
            if self.new is None:
                return f"{label}: no longer stated (was {old} seats)"
            return f"{label}: {old} -> {new} seats"
        if k == "representative":
            person = _PERSON.get(self.attribute or "", "representative")
            if self.old is None:
                return f"New {person}: {new}"
            if self.new is None:
                return f"No {person} listed any more (was {old})"
            return f"{person[0].upper()}{person[1:]}: {old} -> {new}"
        if k in _HEADLINES:
            return _HEADLINES[k].format(old=old, new=new)
        if k == "news":
            return new or "News"
        return f"{k.replace('_', ' ').capitalize()}: {old or '-'} -> {new or '-'}"

    @property
    def short(self) -> str:
        """The change in a few words, for a subject: 'Supreme Council seats 6 -> 7'."""
        k = self.kind
        if k == "composition":
            chamber = self.chamber or "total"
            label = (
                "seats" if chamber == "total" else f"{chamber_name(self.delegation, chamber)} seats"
            )
            if self.new is None:
                return f"{label} no longer stated"
            if self.old is None:
                return f"{label} {clean(self.new, 10)}"
            return f"{label} {clean(self.old, 10)} -> {clean(self.new, 10)}"
        if k == "representative":
            person = {"plenipotentiary_role": "plenipotentiary's role", "head": "head"}.get(
                self.attribute or "", "plenipotentiary"
            )
            if self.old is None:
                return f"new {person}"
            if self.new is None:
                return f"{person} gone"
            return f"{person} changed"
        return {
            "website_added": "website added",
            "website_removed": "website removed",
            "delegation_added": "delegation appeared",
            "delegation_removed": "delegation gone",
            "page_changed": "page changed",
        }.get(k, k.replace("_", " "))

    def as_json(self, base_url: str | None) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "delegation": self.delegation,
            "attribute": self.attribute,
            "old": self.old,
            "new": self.new,
            "summary": self.headline,
            "first_detected": self.first_detected,
            "last_detected": self.last_detected,
            "sources": [s.as_json(base_url) for s in self.sightings],
            "details": dict(self.details),
        }


def _change_key(e: ReportEvent) -> tuple[Any, ...]:
    def folded(value: str | None) -> str | None:
        return None if value is None else fold_text(value)

    # A page's text changing is a change of that page: never merged across sources.
    source = e.source_id if e.kind == "page_changed" else None
    return (e.kind, e.delegation, e.attribute, folded(e.old), folded(e.new), source)


def items_from_changes(changes: Iterable[DelegationChange]) -> list[ChangeItem]:
    """Report items from storage's delegation-level changes (``Store.delegation_changes``:
    what "the same change" is, decided once when it was recorded), each with every source
    that shows it."""
    out = []
    for c in changes:
        if c.kind in MONITORING_KINDS:
            continue
        sightings = tuple(
            Sighting(
                w.event_id, w.source, w.url, w.detected_at, w.before_snapshot, w.after_snapshot
            )
            for w in c.sources
        )
        out.append(
            ChangeItem(c.kind, c.delegation, c.attribute, c.old, c.new, sightings, c.details or {})
        )
    return out


def group_changes(events: Iterable[ReportEvent]) -> list[ChangeItem]:
    """Events grouped into items without a database (a report of bare event rows, e.g. the
    tests'): events with the same (kind, delegation, attribute, old, new) seen on several
    sources become one item, values compared folded. With a database, ``build_report``
    takes the changes storage recorded instead (``items_from_changes``)."""
    items: dict[tuple[Any, ...], list[ReportEvent]] = {}
    for e in sorted(events, key=lambda e: e.id):
        items.setdefault(_change_key(e), []).append(e)
    out = []
    for group in items.values():
        first = group[0]
        sightings = tuple(
            Sighting(e.id, e.source_id, e.url, e.detected_at, e.before_snapshot, e.after_snapshot)
            for e in group
        )
        out.append(
            ChangeItem(
                first.kind,
                first.delegation,
                first.attribute,
                first.old,
                first.new,
                sightings,
                first.details,
            )
        )
    return out


def with_evidence(items: Sequence[ChangeItem], store: Store) -> list[ChangeItem]:
    """Each sighting with the lines of its page before and after, from the snapshots."""
    from pawatch.evidence import SnapshotLines

    reader = SnapshotLines(store)
    out = []
    for item in items:
        if item.kind == "news":
            out.append(item)
            continue
        sightings = tuple(
            replace(
                s,
                excerpt=reader.excerpt(s.before_snapshot, s.after_snapshot, item.old, item.new),
            )
            for s in item.sightings
        )
        out.append(replace(item, sightings=sightings))
    return out


def snapshot_url(base_url: str | None, snapshot_id: int | None) -> str | None:
    """The web view of a stored snapshot under ``[report] base_url`` (None without one)."""
    if not base_url or snapshot_id is None:
        return None
    return base_url.rstrip("/") + SNAPSHOT_PATH.format(id=snapshot_id)


# ------------------------------------------------------------------ health


@dataclass(frozen=True)
class Problem:
    """A source failing, with a broken parse, or with a degraded one (a part of the page
    unreadable, its facts held), now."""

    source_id: str
    url: str | None
    delegation: str | None
    condition: str  # failing | broken | degraded
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
        since = f" since {when(self.since)}" if self.since else ""
        fails = (
            f", {self.consecutive_failures} failed checks in a row"
            if self.condition == "failing"
            else ""
        )
        if self.condition == "degraded":
            return (
                f"{self.source_id} partly unreadable (its facts held){since}: "
                f"{clean(self.error, 200)}"
            )
        return f"{self.source_id} {self.condition}{since}{fails}: {clean(self.error, 200)}"

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source_id,
            "url": self.url,
            "delegation": self.delegation,
            "condition": self.condition,
            "since": self.since,
            "error": self.error,
            "consecutive_failures": self.consecutive_failures,
        }


# ------------------------------------------------------------------ the report


@dataclass(frozen=True)
class Group:
    delegation: str | None  # None: changes not about one delegation
    items: tuple[ChangeItem, ...]

    @property
    def name(self) -> str:
        return delegation_name(self.delegation)


@dataclass(frozen=True)
class Report:
    generated_at: str
    events: tuple[ReportEvent, ...]
    changes: tuple[ChangeItem, ...] = ()  # delegation-level changes and news, grouped
    problems: tuple[Problem, ...] = ()
    channel: str = "all"
    prefix: str = "pawatch"
    reminder: bool = False  # sent for health repeats: only problems, no new events
    base_url: str | None = None  # [report] base_url: links to the stored snapshots
    operator: bool = False  # the operator's own output: CLI commands may be shown

    @cached_property
    def items(self) -> list[ChangeItem]:
        return [c for c in self.changes if c.kind != "news"]

    @cached_property
    def groups(self) -> list[Group]:
        """Delegation changes, grouped; the group with the most important change first."""
        by: dict[str | None, list[ChangeItem]] = {}
        for item in self.items:
            by.setdefault(item.delegation, []).append(item)
        groups = [Group(d, tuple(sorted(items, key=_order))) for d, items in by.items()]
        return sorted(
            groups,
            key=lambda g: (g.delegation is None, g.items[0].rank, g.name, g.delegation or ""),
        )

    @cached_property
    def news(self) -> list[ChangeItem]:
        return [c for c in self.changes if c.kind == "news"]

    @cached_property
    def health_events(self) -> list[ReportEvent]:
        """The sources' health and the findings about them (disagreements)."""
        return [e for e in self.events if e.kind in MONITORING_KINDS]

    @property
    def empty(self) -> bool:
        return not self.changes and not self.health_events and not self.problems

    def link(self, snapshot_id: int | None) -> str | None:
        return snapshot_url(self.base_url, snapshot_id)

    @cached_property
    def subject(self) -> str:
        """What happened, in words, within ``SUBJECT_MAX`` characters:
        '[pawatch] Kyrgyzstan: Supreme Council seats 6 -> 7; Tajikistan: new plenipotentiary'."""
        tag = self.prefix if self.channel == "all" else f"{self.prefix} {self.channel}"
        head = f"[{clean(tag, 40)}] " if tag.strip() else ""
        segments = [(g.name, _subject_parts(g.items)) for g in self.groups]
        tail = []
        if self.news:
            tail.append(plural(len(self.news), "news item"))
        disputed = {e.delegation for e in self.health_events if e.kind == "sources_disagree"}
        if disputed:
            names = ", ".join(sorted(delegation_name(d) for d in disputed))
            tail.append(f"sources disagree on {names}")
        unhealthy = {e.source_id for e in self.health_events if e.kind in _BAD} | {
            p.source_id for p in self.problems
        }
        recovered = [e for e in self.health_events if e.kind in _RECOVERED]
        if unhealthy:
            n = len(unhealthy)
            tail.append(f"{plural(n, 'source')} need{'s' if n == 1 else ''} attention")
        elif recovered:
            tail.append(plural(len(recovered), "source") + " recovered")
        if not segments and not tail:
            return f"{head}no changes"
        return _fit(head, segments, tail, SUBJECT_MAX)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": JSON_FORMAT,
            "generated_at": self.generated_at,
            "channel": self.channel,
            "subject": self.subject,
            "counts": {
                "changes": len(self.items),
                "news": len(self.news),
                "events": sum(len(c.sightings) for c in self.changes),
                "health_events": len(self.health_events),
                "problems": len(self.problems),
            },
            "delegations": [
                {
                    "delegation": g.delegation,
                    "name": g.name if g.delegation is not None else None,
                    "changes": [i.as_json(self.base_url) for i in g.items],
                }
                for g in self.groups
            ],
            "news": [i.as_json(self.base_url) for i in self.news],
            "health": {
                "events": [e.as_json() for e in self.health_events],
                "problems": [p.as_json() for p in self.problems],
            },
        }


_BAD = ("source_failing", "parse_broken", "source_moved")  # "needs attention", not "recovered"
_RECOVERED = ("source_recovered", "parse_recovered")
_COUNTED = {
    "member_added": ("new member", "new members"),
    "member_removed": ("member gone", "members gone"),
    "member_renamed": ("name respelled", "names respelled"),
}


def _subject_parts(items: Sequence[ChangeItem]) -> list[tuple[int, str]]:
    """The group's changes in a few words with their rank; members counted by kind."""
    parts: list[tuple[int, str]] = []
    counts: dict[str, int] = {}
    for item in items:
        if item.kind in _COUNTED:
            counts[item.kind] = counts.get(item.kind, 0) + 1
    for item in items:
        if item.kind in _COUNTED:
            n = counts.pop(item.kind, 0)
            if n:
                one, many = _COUNTED[item.kind]
                parts.append((item.rank, f"{n} {one if n == 1 else many}"))
        else:
            parts.append((item.rank, item.short))
    return list(dict.fromkeys(parts))


def _fit(
    head: str, segments: list[tuple[str, list[tuple[int, str]]]], tail: list[str], limit: int
) -> str:
    """'Country: a, b' segments joined by '; ', then the tail; the most important parts of
    every country first (a second country's seats before a first one's members), as many as
    fit in ``limit``, the rest counted as '+N more'. Never longer than ``limit``."""
    pieces = [
        (rank, g, i, name, part)
        for g, (name, parts) in enumerate(segments)
        for i, (rank, part) in enumerate(parts)
    ]
    pieces.sort(key=lambda p: (p[0], p[1], p[2]))
    pieces += [(99, len(segments), i, "", part) for i, part in enumerate(tail)]

    def render(shown: list[tuple[int, int, int, str, str]], more: int) -> str:
        out: list[str] = []
        last: int | None = None
        for _, g, _, name, part in sorted(shown, key=lambda p: (p[1], p[0], p[2])):
            if name and g == last:
                out[-1] += f", {clean(part, 60)}"
            else:
                out.append(f"{clean(name, 30)}: {clean(part, 60)}" if name else clean(part, 60))
            last = g
        return head + "; ".join(out) + (f" (+{more} more)" if more else "")

    shown: list[tuple[int, int, int, str, str]] = []
    for i, piece in enumerate(pieces):
        if len(render([*shown, piece], len(pieces) - i - 1)) > limit:
            break
        shown.append(piece)
    subject = render(shown, len(pieces) - len(shown))
    if not shown:
        subject = render(pieces[:1], 0)
    return subject if len(subject) <= limit else subject[: limit - 1] + "…"


def _order(item: ChangeItem) -> tuple[int, bool, str]:
    return (item.rank, item.attribute != "seats:total", item.first_detected)


def build_report(
    events: Iterable[Mapping[str, Any]],
    problems: Iterable[Mapping[str, Any]] = (),
    *,
    generated_at: datetime | None = None,
    channel: str = "all",
    prefix: str = "pawatch",
    reminder: bool = False,
    store: Store | None = None,
    base_url: str | None = None,
    operator: bool = False,
) -> Report:
    """A report of these events; with ``store``, each change quotes its pages' lines before
    and after from the stored snapshots."""
    moment = (generated_at or datetime.now(UTC)).astimezone(UTC)
    rows = tuple(ReportEvent.from_row(r) for r in events)
    if store is None:
        changes = group_changes(e for e in rows if e.kind not in MONITORING_KINDS)
    else:
        ids = [e.id for e in rows if e.kind not in MONITORING_KINDS]
        found = store.delegation_changes(ids=ids) if ids else []
        changes = with_evidence(items_from_changes(found), store)
    return Report(
        generated_at=format_time(moment),
        events=rows,
        changes=tuple(changes),
        problems=tuple(Problem.from_row(p) for p in problems),
        channel=channel,
        prefix=prefix,
        reminder=reminder,
        base_url=base_url,
        operator=operator,
    )


# ------------------------------------------------------------------ rendering


def http_only(url: str | None) -> str | None:
    """A link target only for http(s) URLs: no ``javascript:`` from a scraped page."""
    if url and urlsplit(url).scheme in ("http", "https") and printable(url) == url:
        return url
    return None


def when(stamp: str | None) -> str:
    """'2026-11-27T08:00:00Z' -> '2026-11-27 08:00 UTC'."""
    if not stamp:
        return ""
    return f"{stamp[:10]} {stamp[11:16]} UTC" if len(stamp) >= 16 else stamp


def link_text(url: str | None) -> str:
    """A URL as a reader recognises it: host and path, shortened."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.hostname:
        host = parts.hostname.removeprefix("www.")
        port = f":{parts.port}" if parts.port else ""
        return clean(f"{host}{port}{parts.path if parts.path != '/' else ''}", 60)
    return clean(url, 60)


@cache
def _environment() -> jinja2.Environment:
    import jinja2  # here: a query command that never renders does not pay for the import

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pawatch", "templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "xml"), disabled_extensions=("txt",), default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["http_only"] = http_only
    env.filters["clean"] = clean
    env.filters["when"] = when
    env.filters["link_text"] = link_text
    env.filters["plural"] = plural
    return env


def render_text(report: Report) -> str:
    return printable(_environment().get_template("report.txt").render(r=report))


def render_html(report: Report) -> str:
    return printable(_environment().get_template("report.html").render(r=report))


def render_item_html(item: ChangeItem, base_url: str | None = None) -> str:
    """One change as an HTML fragment (the feed's entry content)."""
    template = _environment().get_template("item.html")
    return template.render(item=item, link_of=lambda i: snapshot_url(base_url, i))


def render_json(report: Report) -> str:
    return json.dumps(report.as_json(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"


RENDERERS = {"text": render_text, "html": render_html, "json": render_json}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """'7d', '12h', '30m', '2w' back from now, or a date/time '2026-11-01[T10:00[Z]]' (UTC)."""
    return parse_moment(text, now)
