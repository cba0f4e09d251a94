"""The fact-tracking rule, once: ``track(state, sighting, policy) -> Tracked``.

One pure function decides what one check of one source does to that source's facts, health
and events: ``track`` takes what is known of the source (``SourceState``: its open facts, its
parse and fetch health, the change awaiting confirmation), what this check saw (``Sighting``:
a failure, a parse, or the body parsed last time) and the source's rules (``Policy``), and
returns the fact operations to write, the events to record and the new state (``Tracked``).
It reads no database and no clock, and writes nothing: ``Store.record_check`` (the live path)
loads the state, calls it and writes what it returns in the check's transaction;
``Store.rebuild_facts`` (reparse) folds it over the stored snapshots, writing only the facts;
``bench/history.py`` drives its simulation with it.

The rules: a failed fetch or a broken parse never touches a fact. The first good parse is the
baseline. Later, a fact set that differs from the open facts becomes the facts only once
``policy.confirm`` checks saw it, dated from its first sighting, so a flip back inside the
window leaves nothing. Changes are ``storage.changes.diff_facts`` of the two fact sets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pawatch.domain import Fact
from pawatch.storage.changes import (
    Change,
    Identity,
    count_members,
    diff_facts,
    identity,
    matches_watch,
)


@dataclass(frozen=True)
class NewsRow:
    url: str
    title: str
    published: str | None = None
    date_text: str | None = None
    summary: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Held:
    """A part of a page the parser found but could not read (``scraper.parsers.Unreadable``):
    the source's open facts of ``subject`` whose attribute starts with ``attribute_prefix``
    are held as they were (neither ended nor replaced, no event) and the parse is
    ``degraded`` with ``message``."""

    subject: str
    attribute_prefix: str
    message: str

    def covers(self, fact: Fact) -> bool:
        return fact.subject == self.subject and fact.attribute.startswith(self.attribute_prefix)


@dataclass(frozen=True)
class ParseInput:
    """The outcome of parsing one snapshot: facts, or why there are none."""

    parser_version: int
    facts: Sequence[Fact] | None  # None: the parse failed or found no block
    error: str | None = None
    warnings: Sequence[str] = ()
    news: Sequence[NewsRow] = ()
    text_diff: str | None = None  # `page` sources: unified diff from the previous text
    text: str | None = None  # `page` sources: the normalised text (not stored: it is in the
    # snapshot); the pipeline diffs it against the previous version's
    held: Sequence[Held] = ()  # parts found but unreadable: their facts are held


@dataclass(frozen=True)
class Policy:
    """Per-source alerting rules."""

    confirm: int = 1  # consecutive good checks before a change is reported
    failing_after: int = 3  # consecutive failed checks before source_failing
    collapse_ratio: float = 0.5  # fewer members than this share of the last good parse: broken
    collapse_min: int = 4  # ...when the last good parse had at least this many
    watch: tuple[str, ...] = ()  # news alerts only for items mentioning one of these


# ------------------------------------------------------------------ the rule's input


@dataclass(frozen=True)
class OpenFact:
    """One of the source's facts that has not ended."""

    id: int | None  # the row id (None: opened by this fold, not written yet)
    fact: Fact
    last_snapshot: int | None


class NewsMemory:
    """What the rule needs to know of a source's earlier news items (read-only lookups).

    The default knows nothing (reparse raises no events, so it never asks).
    """

    def listed_before(self) -> set[str]:
        """URLs of the items this source listed before and no longer lists (ended facts)."""
        return set()

    def stored(self, url: str) -> tuple[str | None, str | None]:
        """The stored (summary, text) of one item."""
        return None, None


@dataclass(frozen=True)
class SourceState:
    """What is known of one source before a check (the ``source_state`` row and open facts)."""

    open: tuple[OpenFact, ...] | None = ()  # None: not read (a check of the body parsed last
    # time with nothing awaiting confirmation does not need them)
    parser_version: int | None = None
    parsed_snapshot: int | None = None
    baseline_at: str | None = None
    parse_status: str | None = None  # ok | degraded | broken | None (never parsed)
    parse_error: str | None = None
    broken_since: str | None = None
    warnings: str | None = None  # JSON list of the last parse's warnings
    consecutive_failures: int = 0
    failing_since: str | None = None
    failing_alerted: bool = False
    last_error: str | None = None  # the last failed fetch's error (read when failing_alerted)
    candidate: str | None = None  # the fact set awaiting confirmation (``facts_json``)
    candidate_count: int = 0
    candidate_since: str | None = None
    candidate_snapshot: int | None = None
    news: NewsMemory = field(default_factory=NewsMemory, compare=False)

    @property
    def open_facts(self) -> list[Fact]:
        assert self.open is not None, "the open facts were not read"
        return [o.fact for o in self.open]

    def columns(self) -> dict[str, Any]:
        """The ``source_state`` columns this state stands for."""
        return {
            "parser_version": self.parser_version,
            "parsed_snapshot": self.parsed_snapshot,
            "baseline_at": self.baseline_at,
            "parse_status": self.parse_status,
            "parse_error": self.parse_error,
            "broken_since": self.broken_since,
            "warnings": self.warnings,
            "consecutive_failures": self.consecutive_failures,
            "failing_since": self.failing_since,
            "failing_alerted": int(self.failing_alerted),
            "candidate": self.candidate,
            "candidate_count": self.candidate_count,
            "candidate_since": self.candidate_since,
            "candidate_snapshot": self.candidate_snapshot,
        }


@dataclass(frozen=True)
class Sighting:
    """What one check saw of a source (or, for reparse, one stored version of it)."""

    stamp: str  # when it was (last) seen: the detection time of the check
    snapshot_id: int | None
    url: str = ""
    failed: bool = False
    error: str | None = None  # the fetch error, when failed
    parse: ParseInput | None = None  # None: failed, or the body parsed last time
    first_seen: str | None = None  # reparse: when the version was first seen (else ``stamp``)
    seen_count: int = 1  # checks that saw it (reparse: ``snapshots.seen_count``)

    @property
    def since(self) -> str:
        return self.first_seen or self.stamp


# ------------------------------------------------------------------ the rule's output


@dataclass(frozen=True)
class Touch:
    """Every open fact was seen again at ``stamp`` in ``snapshot``."""

    stamp: str
    snapshot: int | None


@dataclass(frozen=True)
class End:
    """An open fact ended at ``at`` (the first sighting that no longer had it)."""

    fact: OpenFact
    at: str
    snapshot: int | None


@dataclass(frozen=True)
class Open:
    fact: Fact
    first_seen: str
    last_seen: str
    first_snapshot: int | None
    last_snapshot: int | None
    parser_version: int


FactOp = Touch | End | Open


@dataclass(frozen=True)
class EventSpec:
    """An event to record (the store adds the source and the detection time)."""

    kind: str
    attribute: str | None = None
    delegation: str | None = None
    old: str | None = None
    new: str | None = None
    url: str | None = None
    before_snapshot: int | None = None
    after_snapshot: int | None = None
    details: dict[str, Any] | None = None
    identity: Identity | None = None  # a delegation's change: what makes it the same change
    # on another source (``storage.changes.identity``)


@dataclass(frozen=True)
class Tracked:
    ops: tuple[FactOp, ...]
    events: tuple[EventSpec, ...]
    state: SourceState
    news: tuple[NewsRow, ...] = ()  # the parse's news items, to store


def facts_json(facts: Sequence[Fact]) -> str:
    return json.dumps(
        sorted([f.subject, f.attribute, f.key, f.value] for f in facts), ensure_ascii=False
    )


def facts_from_json(text: str) -> list[Fact]:
    return [Fact(*row) for row in json.loads(text)]


# ------------------------------------------------------------------ the rule


def track(state: SourceState, sighting: Sighting, policy: Policy) -> Tracked:
    """Fact operations, events and the new state for one sighting of one source."""
    out = _Out(state, sighting)
    if sighting.failed:
        _failed(out, policy)
        return out.done()
    if state.failing_alerted:
        out.event(
            "source_recovered",
            attribute="fetch",
            old=state.last_error,
            details={"failing_since": state.failing_since},
        )
    if state.consecutive_failures or state.failing_alerted:
        out.set(consecutive_failures=0, failing_since=None, failing_alerted=False, last_error=None)

    parse = sighting.parse
    if parse is None:
        # Same body as the last parse: the same facts are seen again.
        if state.parse_status in ("ok", "degraded"):
            _seen_again(out, policy)
        return out.done()
    _parsed(out, parse, policy)
    return out.done()


class _Out:
    """The result being built: ops, events, and the state as it evolves."""

    def __init__(self, state: SourceState, sighting: Sighting) -> None:
        self.state = state
        self.sighting = sighting
        self.ops: list[FactOp] = []
        self.events: list[EventSpec] = []
        self.news: tuple[NewsRow, ...] = ()

    def set(self, **values: Any) -> None:
        self.state = replace(self.state, **values)

    def event(self, kind: str, **kw: Any) -> None:
        kw.setdefault("url", self.sighting.url)
        self.events.append(EventSpec(kind, **kw))

    def touch(self) -> None:
        s = self.sighting
        self.ops.append(Touch(s.stamp, s.snapshot_id))
        if self.state.open is not None:
            self.set(open=tuple(replace(o, last_snapshot=s.snapshot_id) for o in self.state.open))

    def done(self) -> Tracked:
        return Tracked(tuple(self.ops), tuple(self.events), self.state, self.news)


def _failed(out: _Out, policy: Policy) -> None:
    state, s = out.state, out.sighting
    failures = state.consecutive_failures + 1
    since = state.failing_since if failures > 1 else s.stamp
    out.set(consecutive_failures=failures, failing_since=since, last_error=s.error)
    if failures >= policy.failing_after and not state.failing_alerted:
        out.event(
            "source_failing",
            attribute="fetch",
            new=s.error,
            details={"consecutive_failures": failures, "since": since or s.stamp},
        )
        out.set(failing_alerted=True)


def _parsed(out: _Out, parse: ParseInput, policy: Policy) -> None:
    state, s = out.state, out.sighting
    facts = parse.facts
    error = parse.error
    if facts is not None and state.baseline_at is not None:
        collapsed = _collapse_error(state.open_facts, facts, policy)
        if collapsed is not None:
            facts, error = None, collapsed
    common: dict[str, Any] = {
        "parser_version": parse.parser_version,
        "parsed_snapshot": s.snapshot_id,
        # no warnings: NULL, not "[]"
        "warnings": json.dumps(list(parse.warnings), ensure_ascii=False)
        if parse.warnings
        else None,
    }
    if facts is None:
        if state.parse_status != "broken":
            out.event("parse_broken", attribute="parse", new=error, after_snapshot=s.snapshot_id)
            out.set(parse_status="broken", parse_error=error, broken_since=s.since, **common)
        else:
            out.set(parse_error=error, **common)
        return

    if state.parse_status == "broken":
        out.event(
            "parse_recovered",
            attribute="parse",
            old=state.parse_error,
            before_snapshot=state.parsed_snapshot,
            after_snapshot=s.snapshot_id,
            details={"broken_since": state.broken_since},
        )
    degraded = "; ".join(h.message for h in parse.held) or None
    status = "ok" if degraded is None else "degraded"
    out.set(parse_status=status, parse_error=degraded, broken_since=None, **common)
    out.news = tuple(parse.news)

    if state.baseline_at is None:
        _become(out, _held(facts, [], parse.held), parse.parser_version)
        out.set(baseline_at=s.since)
        _clear_candidate(out)
        return

    facts = _held(facts, state.open_facts, parse.held)
    encoded = facts_json(facts)
    if encoded == facts_json(state.open_facts):
        out.touch()
        if state.candidate is not None:  # flipped back inside the confirm window
            _clear_candidate(out)
        return
    if state.candidate is not None and state.candidate == encoded:
        count, since, snap = (
            state.candidate_count + s.seen_count,
            state.candidate_since,
            state.candidate_snapshot,
        )
    else:
        count, since, snap = s.seen_count, s.since, s.snapshot_id
    assert since is not None
    if count >= policy.confirm:
        _apply_change(out, facts, since, snap, parse.parser_version, policy)
        _clear_candidate(out)
    else:
        out.set(
            candidate=encoded, candidate_count=count, candidate_since=since, candidate_snapshot=snap
        )


def _held(facts: Sequence[Fact], current: Sequence[Fact], held: Sequence[Held]) -> list[Fact]:
    """``facts`` with the held parts replaced by the source's current facts of those parts."""
    if not held:
        return list(facts)
    kept = [f for f in facts if not any(h.covers(f) for h in held)]
    return kept + [f for f in current if any(h.covers(f) for h in held)]


def _collapse_error(last_good: Sequence[Fact], facts: Sequence[Fact], policy: Policy) -> str | None:
    """Why ``facts`` are a collapsed member list rather than news, or None when they are not."""
    before, after = count_members(last_good), count_members(facts)
    if before >= policy.collapse_min and after < before * policy.collapse_ratio:
        return (
            f"member list collapsed from {before} to {after} names "
            f"(below {policy.collapse_ratio:.0%} of the last good parse)"
        )
    return None


def _seen_again(out: _Out, policy: Policy) -> None:
    state, s = out.state, out.sighting
    if state.candidate is None:
        out.touch()
        return
    count = state.candidate_count + s.seen_count
    if count >= policy.confirm:
        assert state.candidate_since is not None
        _apply_change(
            out,
            facts_from_json(state.candidate),
            state.candidate_since,
            state.candidate_snapshot,
            state.parser_version or 0,
            policy,
        )
        _clear_candidate(out)
    else:
        out.set(candidate_count=count)


def _clear_candidate(out: _Out) -> None:
    """Forget the change awaiting confirmation (applied, or flipped back)."""
    out.set(candidate=None, candidate_count=0, candidate_since=None, candidate_snapshot=None)


def _become(out: _Out, facts: Sequence[Fact], parser_version: int) -> None:
    """The baseline: ``facts`` are the source's facts from this sighting on."""
    s = out.sighting
    opened = [
        Open(f, s.since, s.stamp, s.snapshot_id, s.snapshot_id, parser_version)
        for f in dict.fromkeys(facts)
    ]
    out.ops.extend(opened)
    out.set(open=tuple(OpenFact(None, o.fact, s.snapshot_id) for o in opened))
    out.touch()  # (a no-op on the rows just opened: every open fact was seen now)


def _apply_change(
    out: _Out,
    new: Sequence[Fact],
    since: str,
    snapshot: int | None,
    parser_version: int,
    policy: Policy,
) -> None:
    """Close the facts that ended, open the new ones, and raise one event per change."""
    s = out.sighting
    current = out.state.open
    assert current is not None
    new_set = set(new)
    old_set = {o.fact for o in current}
    before_snapshot = max(
        (o.last_snapshot for o in current if o.last_snapshot is not None), default=None
    )
    kept = [o for o in current if o.fact in new_set]
    out.ops.extend(End(o, since, snapshot) for o in current if o.fact not in new_set)
    opened = [
        Open(f, since, s.stamp, snapshot, s.snapshot_id, parser_version)
        for f in new
        if f not in old_set
    ]
    out.ops.extend(opened)
    out.set(open=(*kept, *(OpenFact(None, o.fact, s.snapshot_id) for o in opened)))
    out.touch()  # the facts kept were seen in this sighting too
    changes = diff_facts([o.fact for o in current], new)
    # (an item added by this change was not listed just before, so none of the facts ended
    # above is one of them)
    listed_before = out.state.news.listed_before() if _has_news(changes) else set()
    for change in changes:
        url = s.url
        if change.kind == "news":
            if change.key in listed_before:  # scrolled off the list and came back: not news
                continue
            if policy.watch and not matches_watch(
                f"{change.new or ''} {_news_text(out, change.key)}", policy.watch
            ):
                continue
            url = change.key or s.url  # the item's own page, for the reader to click through
        out.event(
            change.kind,
            delegation=change.delegation,
            attribute=change.attribute,
            old=change.old,
            new=change.new,
            url=url,
            before_snapshot=before_snapshot,
            after_snapshot=snapshot,
            details=_details(change, s.parse.text_diff if s.parse is not None else None),
            identity=identity(change) if change.delegation is not None else None,
        )


def _news_text(out: _Out, url: str) -> str:
    """The summary and text of one news item (this parse's, else the stored ones), for the
    watch filter."""
    summary, text = out.state.news.stored(url)
    for row in out.news:
        if row.url == url:
            summary, text = row.summary or summary, row.text or text
    return f"{summary or ''} {text or ''}"


DIFF_LINES = 200  # lines of a page's text diff kept in a page_changed event


def _details(change: Change, text_diff: str | None) -> dict[str, Any] | None:
    """An event's details; a ``page_changed`` one carries the text diff, cut to
    ``DIFF_LINES`` lines (``diff_truncated`` says whether it was cut)."""
    if change.kind != "page_changed":
        return {"subject": change.subject}
    lines = (text_diff or "").splitlines()
    return {
        "subject": change.subject,
        "diff": "\n".join(lines[:DIFF_LINES]) if text_diff is not None else None,
        "diff_truncated": len(lines) > DIFF_LINES,
    }


def _has_news(changes: Sequence[Change]) -> bool:
    return any(c.kind == "news" for c in changes)


# ------------------------------------------------------------------ reparse


@dataclass(frozen=True)
class Version:
    """One stored snapshot of a source, parsed again (for ``rebuild``)."""

    snapshot_id: int
    first_seen: str
    last_seen: str
    parse: ParseInput
    seen_count: int = 1  # checks that saw this version (``snapshots.seen_count``)


def reparse_sightings(versions: Sequence[Version]) -> list[Sighting]:
    """The stored versions as the sightings ``track`` folds over to rebuild a source's facts
    (reparse: from a blank ``SourceState``, oldest first, events dropped)."""
    return [
        Sighting(
            stamp=v.last_seen,
            snapshot_id=v.snapshot_id,
            parse=v.parse,
            first_seen=v.first_seen,
            seen_count=v.seen_count,
        )
        for v in versions
    ]
