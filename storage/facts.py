"""Facts over time, monitoring health and change events, inside one check's transaction.

``apply_check`` is called by ``Store.record_check`` after the fetch-log and snapshot rows are
written, in the same transaction. It keeps each source's facts as intervals, turns confirmed
fact changes into events (``storage.changes.diff_facts``), and turns failures into health
events. A failed fetch or a broken parse never touches a fact.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pawatch.domain import Fact
from pawatch.storage.changes import Change, count_members, diff_facts, matches_watch

EventWriter = Callable[..., int]


@dataclass(frozen=True)
class NewsRow:
    url: str
    title: str
    published: str | None = None
    date_text: str | None = None
    summary: str | None = None
    text: str | None = None


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


@dataclass(frozen=True)
class Policy:
    """Per-source alerting rules."""

    confirm: int = 1  # consecutive good checks before a change is reported
    failing_after: int = 3  # consecutive failed checks before source_failing
    collapse_ratio: float = 0.5  # fewer members than this share of the last good parse: broken
    collapse_min: int = 4  # ...when the last good parse had at least this many
    watch: tuple[str, ...] = ()  # news alerts only for items mentioning one of these


@dataclass
class CheckContext:
    source_id: str
    url: str
    stamp: str  # detection time of this check
    snapshot_id: int | None
    failed: bool
    error: str | None
    text_diff: str | None = None
    event_ids: list[int] = field(default_factory=list)


def _facts_json(facts: Sequence[Fact]) -> str:
    return json.dumps(
        sorted([f.subject, f.attribute, f.key, f.value] for f in facts), ensure_ascii=False
    )


def _facts_from_json(text: str) -> list[Fact]:
    return [Fact(*row) for row in json.loads(text)]


def _state(conn: sqlite3.Connection, source_id: str) -> dict[str, Any]:
    conn.execute("INSERT OR IGNORE INTO source_state (source_id) VALUES (?)", (source_id,))
    cur = conn.execute("SELECT * FROM source_state WHERE source_id = ?", (source_id,))
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))


def _update_state(conn: sqlite3.Connection, source_id: str, **values: Any) -> None:
    if values:
        assigns = ", ".join(f"{k} = ?" for k in values)
        conn.execute(
            f"UPDATE source_state SET {assigns} WHERE source_id = ?", (*values.values(), source_id)
        )


def open_facts(conn: sqlite3.Connection, source_id: str) -> list[tuple[int, Fact, int | None]]:
    rows = conn.execute(
        "SELECT id, subject, attribute, key, value, last_snapshot FROM facts "
        "WHERE source_id = ? AND ended_at IS NULL ORDER BY id",
        (source_id,),
    ).fetchall()
    return [(r[0], Fact(r[1], r[2], r[3], r[4]), r[5]) for r in rows]


def apply_check(
    conn: sqlite3.Connection,
    ctx: CheckContext,
    parse: ParseInput | None,
    policy: Policy,
    write_event: EventWriter,
) -> None:
    """Health, facts and events for one check (inside the caller's transaction)."""
    state = _state(conn, ctx.source_id)

    def event(kind: str, **kw: Any) -> None:
        kw.setdefault("url", ctx.url)
        ctx.event_ids.append(
            write_event(kind=kind, detected_at=ctx.stamp, source_id=ctx.source_id, **kw)
        )

    if ctx.failed:
        failures = state["consecutive_failures"] + 1
        updates: dict[str, Any] = {"consecutive_failures": failures}
        if failures == 1:
            updates["failing_since"] = ctx.stamp
        if failures >= policy.failing_after and not state["failing_alerted"]:
            event(
                "source_failing",
                attribute="fetch",
                new=ctx.error,
                details={
                    "consecutive_failures": failures,
                    "since": state["failing_since"] or ctx.stamp,
                },
            )
            updates["failing_alerted"] = 1
        _update_state(conn, ctx.source_id, **updates)
        return

    if state["failing_alerted"]:
        event(
            "source_recovered",
            attribute="fetch",
            old=_last_error(conn, ctx.source_id),
            details={"failing_since": state["failing_since"]},
        )
    if state["consecutive_failures"] or state["failing_alerted"]:
        _update_state(
            conn, ctx.source_id, consecutive_failures=0, failing_since=None, failing_alerted=0
        )

    if parse is None:
        # Same body as the last parse: the same facts are seen again.
        if state["parse_status"] == "ok":
            _seen_again(conn, ctx, state, policy, event)
        return
    current = open_facts(conn, ctx.source_id)

    facts = parse.facts
    error = parse.error
    if facts is not None and state["baseline_at"] is not None:
        collapsed = _collapse_error([f for _, f, _ in current], facts, policy)
        if collapsed is not None:
            facts, error = None, collapsed
    common = {
        "parser_version": parse.parser_version,
        "parsed_snapshot": ctx.snapshot_id,
        # no warnings: NULL, not "[]"
        "warnings": json.dumps(list(parse.warnings), ensure_ascii=False)
        if parse.warnings
        else None,
    }
    conn.execute(
        "UPDATE fetch_log SET parse_status = ?, parse_error = ? WHERE id = "
        "(SELECT MAX(id) FROM fetch_log WHERE source_id = ?)",
        ("broken" if facts is None else "ok", error, ctx.source_id),
    )
    if facts is None:
        if state["parse_status"] != "broken":
            event("parse_broken", attribute="parse", new=error, after_snapshot=ctx.snapshot_id)
            _update_state(
                conn,
                ctx.source_id,
                parse_status="broken",
                parse_error=error,
                broken_since=ctx.stamp,
                **common,
            )
        else:
            _update_state(conn, ctx.source_id, parse_error=error, **common)
        return

    if state["parse_status"] == "broken":
        event(
            "parse_recovered",
            attribute="parse",
            old=state["parse_error"],
            before_snapshot=state["parsed_snapshot"],
            after_snapshot=ctx.snapshot_id,
            details={"broken_since": state["broken_since"]},
        )
    _update_state(
        conn, ctx.source_id, parse_status="ok", parse_error=None, broken_since=None, **common
    )
    _store_news(conn, ctx, parse.news)

    if state["baseline_at"] is None:
        _open(conn, ctx, facts, ctx.stamp, ctx.snapshot_id, parse.parser_version)
        _update_state(conn, ctx.source_id, baseline_at=ctx.stamp)
        _clear_candidate(conn, ctx.source_id)
        return

    encoded = _facts_json(facts)
    if encoded == _facts_json([f for _, f, _ in current]):
        _touch(conn, ctx)
        if state["candidate"] is not None:  # flipped back inside the confirm window
            _clear_candidate(conn, ctx.source_id)
        return
    if state["candidate"] is not None and state["candidate"] == encoded:
        count, since, snap = (
            state["candidate_count"] + 1,
            state["candidate_since"],
            state["candidate_snapshot"],
        )
    else:
        count, since, snap = 1, ctx.stamp, ctx.snapshot_id
    if count >= policy.confirm:
        _apply_change(conn, ctx, current, facts, since, snap, parse.parser_version, policy, event)
        _clear_candidate(conn, ctx.source_id)
    else:
        _update_state(
            conn,
            ctx.source_id,
            candidate=encoded,
            candidate_count=count,
            candidate_since=since,
            candidate_snapshot=snap,
        )


def _collapse_error(last_good: Sequence[Fact], facts: Sequence[Fact], policy: Policy) -> str | None:
    """Why ``facts`` are a collapsed member list rather than news, or None when they are not."""
    before, after = count_members(last_good), count_members(facts)
    if before >= policy.collapse_min and after < before * policy.collapse_ratio:
        return (
            f"member list collapsed from {before} to {after} names "
            f"(below {policy.collapse_ratio:.0%} of the last good parse)"
        )
    return None


def _seen_again(
    conn: sqlite3.Connection,
    ctx: CheckContext,
    state: dict[str, Any],
    policy: Policy,
    event: Callable[..., None],
) -> None:
    if state["candidate"] is None:
        _touch(conn, ctx)
        return
    count = state["candidate_count"] + 1
    if count >= policy.confirm:
        _apply_change(
            conn,
            ctx,
            open_facts(conn, ctx.source_id),
            _facts_from_json(state["candidate"]),
            state["candidate_since"],
            state["candidate_snapshot"],
            state["parser_version"] or 0,
            policy,
            event,
        )
        _clear_candidate(conn, ctx.source_id)
    else:
        _update_state(conn, ctx.source_id, candidate_count=count)


def _clear_candidate(conn: sqlite3.Connection, source_id: str) -> None:
    """Forget the change awaiting confirmation (applied, or flipped back)."""
    _update_state(
        conn,
        source_id,
        candidate=None,
        candidate_count=0,
        candidate_since=None,
        candidate_snapshot=None,
    )


def _touch(conn: sqlite3.Connection, ctx: CheckContext) -> None:
    conn.execute(
        "UPDATE facts SET last_seen = ?, last_snapshot = ? "
        "WHERE source_id = ? AND ended_at IS NULL",
        (ctx.stamp, ctx.snapshot_id, ctx.source_id),
    )


def _open(
    conn: sqlite3.Connection,
    ctx: CheckContext,
    facts: Sequence[Fact],
    since: str,
    snapshot: int | None,
    parser_version: int,
) -> None:
    conn.executemany(
        "INSERT INTO facts (source_id, subject, attribute, key, value, first_seen, last_seen, "
        "first_snapshot, last_snapshot, parser_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            (
                ctx.source_id,
                f.subject,
                f.attribute,
                f.key,
                f.value,
                since,
                ctx.stamp,
                snapshot,
                ctx.snapshot_id,
                parser_version,
            )
            for f in facts
        ],
    )


def _apply_change(
    conn: sqlite3.Connection,
    ctx: CheckContext,
    current: list[tuple[int, Fact, int | None]],
    new: Sequence[Fact],
    since: str,
    snapshot: int | None,
    parser_version: int,
    policy: Policy,
    event: Callable[..., None],
) -> None:
    """Close the facts that ended, open the new ones, and write one event per change."""
    new_set = set(new)
    old_set = {f for _, f, _ in current}
    before_snapshot = max((s for _, _, s in current if s is not None), default=None)
    ended = [fid for fid, f, _ in current if f not in new_set]
    conn.executemany(
        "UPDATE facts SET ended_at = ?, end_snapshot = ? WHERE id = ?",
        [(since, snapshot, fid) for fid in ended],
    )
    _open(conn, ctx, [f for f in new if f not in old_set], since, snapshot, parser_version)
    changes = diff_facts([f for _, f, _ in current], new)
    # (an item added by this change was not listed just before, so none of the facts ended
    # above is one of them)
    listed_before = _news_listed_before(conn, ctx.source_id) if _has_news(changes) else set()
    for change in changes:
        url = ctx.url
        if change.kind == "news":
            if change.key in listed_before:  # scrolled off the list and came back: not news
                continue
            if policy.watch and not matches_watch(
                f"{change.new or ''} {_news_text(conn, ctx.source_id, change.key)}", policy.watch
            ):
                continue
            url = change.key or ctx.url  # the item's own page, for the reader to click through
        event(
            change.kind,
            delegation=change.delegation,
            attribute=change.attribute,
            old=change.old,
            new=change.new,
            url=url,
            before_snapshot=before_snapshot,
            after_snapshot=snapshot,
            details=_details(change, ctx.text_diff),
        )


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


def _news_listed_before(conn: sqlite3.Connection, source_id: str) -> set[str]:
    """URLs of the news items this source listed before and no longer lists (ended facts).

    An item that scrolls off the list and comes back is not news again. Only confirmed
    sightings count (facts, not the ``news`` table, which keeps every parse's items): an item
    first seen inside a flip that was not confirmed is still reported once it is confirmed.
    """
    rows = conn.execute(
        "SELECT DISTINCT key FROM facts WHERE source_id = ? AND subject = 'news' "
        "AND attribute = 'item' AND ended_at IS NOT NULL",
        (source_id,),
    )
    return {r[0] for r in rows}


def _news_text(conn: sqlite3.Connection, source_id: str, url: str) -> str:
    """The stored summary and text of one news item (by its URL), for the watch filter."""
    row = conn.execute(
        "SELECT COALESCE(summary, '') || ' ' || COALESCE(text, '') FROM news "
        "WHERE source_id = ? AND url = ?",
        (source_id, url),
    ).fetchone()
    return str(row[0]) if row else ""


def _store_news(conn: sqlite3.Connection, ctx: CheckContext, news: Sequence[NewsRow]) -> None:
    conn.executemany(
        "INSERT INTO news (source_id, url, title, published, date_text, summary, text, "
        "first_seen, snapshot_id) VALUES (?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (source_id, url) DO UPDATE SET title = excluded.title, "
        "summary = COALESCE(excluded.summary, news.summary), "
        "text = COALESCE(excluded.text, news.text), "
        "published = COALESCE(excluded.published, news.published) "
        "WHERE news.title IS NOT excluded.title OR news.summary IS NOT excluded.summary "
        "OR news.text IS NOT excluded.text",
        [
            (
                ctx.source_id,
                n.url,
                n.title,
                n.published,
                n.date_text,
                n.summary,
                n.text,
                ctx.stamp,
                ctx.snapshot_id,
            )
            for n in news
        ],
    )


def _last_error(conn: sqlite3.Connection, source_id: str) -> str | None:
    row = conn.execute(
        "SELECT error FROM fetch_log WHERE source_id = ? AND outcome = 'failed' "
        "ORDER BY id DESC LIMIT 1",
        (source_id,),
    ).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class Version:
    """One stored snapshot of a source, parsed again (for ``rebuild_facts``)."""

    snapshot_id: int
    first_seen: str
    last_seen: str
    parse: ParseInput
    seen_count: int = 1  # checks that saw this version (``snapshots.seen_count``)


@dataclass
class _Group:
    """Consecutive good versions with one fact set that differs from the current facts."""

    facts: frozenset[Fact]
    checks: int  # checks that saw it, summed over its versions
    first: Version


def rebuild_facts(
    conn: sqlite3.Connection,
    source_id: str,
    versions: Sequence[Version],
    parser_version: int,
    policy: Policy | None = None,
) -> int:
    """Re-derive a source's fact intervals from its snapshots, oldest first; no events.

    Used when a parser's code changed what it extracts: the history is rebuilt as the new
    parser reads it, so the next check compares like with like. The rules are the live
    ones (``apply_check``): the first good version is the baseline; later, consecutive good
    versions with one fact set become the facts only once ``policy.confirm`` checks saw them
    in total (``Version.seen_count``), dated from their first sighting, so a flip back inside
    the window leaves no interval; a trailing group not yet confirmed is left as the change
    awaiting confirmation, for the next check to confirm or drop. A version that cannot be
    read, or whose member list collapsed, is a broken parse: it neither confirms nor refutes.
    Returns the facts written.
    """
    policy = policy or Policy()
    conn.execute("DELETE FROM facts WHERE source_id = ?", (source_id,))
    open_ids: dict[Fact, int] = {}
    written = 0
    baseline: Version | None = None
    pending: _Group | None = None
    last_error: str | None = None

    def become(facts: frozenset[Fact], since: Version, now: Version) -> None:
        """``facts`` are the current facts from ``since`` on, last seen in ``now``."""
        nonlocal written
        for fact in [f for f in open_ids if f not in facts]:
            conn.execute(
                "UPDATE facts SET ended_at = ?, end_snapshot = ? WHERE id = ?",
                (since.first_seen, since.snapshot_id, open_ids.pop(fact)),
            )
        for fact in sorted(facts - open_ids.keys(), key=lambda f: (f.subject, f.attribute, f.key)):
            cur = conn.execute(
                "INSERT INTO facts (source_id, subject, attribute, key, value, first_seen, "
                "last_seen, first_snapshot, last_snapshot, parser_version) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    source_id,
                    fact.subject,
                    fact.attribute,
                    fact.key,
                    fact.value,
                    since.first_seen,
                    now.last_seen,
                    since.snapshot_id,
                    now.snapshot_id,
                    parser_version,
                ),
            )
            assert cur.lastrowid is not None
            open_ids[fact] = cur.lastrowid
            written += 1

    def touch(version: Version) -> None:
        conn.execute(
            "UPDATE facts SET last_seen = ?, last_snapshot = ? "
            "WHERE source_id = ? AND ended_at IS NULL",
            (version.last_seen, version.snapshot_id, source_id),
        )

    for version in versions:
        facts = version.parse.facts
        error = version.parse.error
        if facts is not None and baseline is not None:
            collapsed = _collapse_error(list(open_ids), facts, policy)
            if collapsed is not None:
                facts, error = None, collapsed
        if facts is None:
            last_error = error or "the parser found nothing to read"
            continue
        last_error = None
        seen = frozenset(facts)
        if baseline is None:
            baseline = version
            become(seen, version, version)
            continue
        if seen == open_ids.keys():
            touch(version)
            pending = None  # flipped back inside the confirm window (or no change at all)
            continue
        if pending is not None and pending.facts == seen:
            pending.checks += version.seen_count
        else:
            pending = _Group(seen, version.seen_count, version)
        if pending.checks >= policy.confirm:
            become(seen, pending.first, version)
            touch(version)
            pending = None

    state = _state(conn, source_id)
    status = ("ok" if last_error is None else "broken") if versions else None
    _update_state(
        conn,
        source_id,
        parser_version=parser_version,
        parsed_snapshot=versions[-1].snapshot_id if versions else None,
        parse_status=status,
        parse_error=last_error,
        broken_since=(state["broken_since"] or versions[-1].first_seen)
        if status == "broken"
        else None,
        baseline_at=state["baseline_at"] or (baseline.first_seen if baseline else None),
        candidate=_facts_json(list(pending.facts)) if pending else None,
        candidate_count=pending.checks if pending else 0,
        candidate_since=pending.first.first_seen if pending else None,
        candidate_snapshot=pending.first.snapshot_id if pending else None,
    )
    return written
