"""Query commands: changes, history, show, diff, export, reparse (registered on `cli`)."""

from __future__ import annotations

import csv
import difflib
import io
import json
import sys
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from pawatch import times
from pawatch.cli.common import (
    Context,
    delegation_id,
    echo,
    fail,
    format_option,
    known_delegation,
)
from pawatch.display import LONG_VALUE, event_line, printable, redact_url, shorten
from pawatch.domain import CHANGE_KINDS, HEALTH_KINDS
from pawatch.times import format_time

if TYPE_CHECKING:  # the queries (and sqlite-utils) are imported by the commands using them
    from pawatch.storage.queries import DelegationChange


def parse_moment(text: str, *, end_of_day: bool, option: str = "--since") -> str:
    """``7d``/``24h`` (ago), ``2026-11-27`` or an ISO 8601 time -> a stored-time string; a bare
    date means the end of that day when ``end_of_day`` (``--as-of``), else its start."""
    try:
        return format_time(times.parse_moment(text, end_of_day=end_of_day))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _short(value: str | None) -> str:
    """A scraped value for a terminal line: at most ``LONG_VALUE`` characters."""
    return shorten(value, LONG_VALUE) if value else ""


@click.command()
@click.option(
    "--since",
    metavar="WHEN",
    help="Only events detected since: 7d, 24h, a date "
    "(2026-11-01) or an ISO 8601 time. Default: all.",
)
@click.option("--delegation", metavar="ID", help="Only this delegation (e.g. KG).")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice([*CHANGE_KINDS, *HEALTH_KINDS]),
    help="Only events of this kind (repeatable), e.g. composition, member_added.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    help="Only the N most recent matching events (still printed oldest first).",
)
@click.option(
    "--per-source",
    is_flag=True,
    help="One row per source's event (the evidence) instead of one per delegation-level change.",
)
@format_option("text", "json", help="Output format; json is a stable array of objects.")
@click.pass_obj
def changes(
    obj: Context,
    since: str | None,
    delegation: str | None,
    kinds: tuple[str, ...],
    limit: int | None,
    per_source: bool,
    fmt: str,
) -> None:
    """List changes (one per delegation-level change, with the sources that show it) and
    health events, oldest first."""
    from pawatch.storage.queries import DelegationChange, event_json

    since_at = parse_moment(since, end_of_day=False) if since else None
    with obj.store(create=False) as store:
        delegation = known_delegation(store, delegation) if delegation else None
        find = store.select_events if per_source else store.delegation_changes
        rows: list[Any] = find(since=since_at, delegation=delegation, kinds=kinds, latest=limit)
    as_json, line = (
        (event_json, event_line) if per_source else (DelegationChange.as_json, change_line)
    )
    if fmt == "json":
        click.echo(json.dumps([as_json(r) for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("No events.")
    for row in rows:
        click.echo(printable(line(row)))


def change_line(item: DelegationChange) -> str:
    """One line per change; "seen on N sources" when several sources show it."""
    line = event_line(item.row)
    if len(item.sources) > 1:
        names = ", ".join(sorted({w.source or "-" for w in item.sources}))
        line += f" seen on {len(item.sources)} sources ({names})"
    return line


def _group_by_source(facts: list[Any]) -> dict[str, dict[str, list[Any]]]:
    grouped: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for fact in facts:
        grouped[fact.source_id][fact.attribute].append(fact)
    return grouped


@click.command()
@click.argument("delegation")
@click.option(
    "--as-of",
    "as_of",
    metavar="WHEN",
    help="State at this date (end of that day) or ISO 8601 time, or 7d ago. Default: now.",
)
@format_option("text", "json", help="Output format.")
@click.pass_obj
def history(obj: Context, delegation: str, as_of: str | None, fmt: str) -> None:
    """A delegation's composition, representative and members at a date, and its timeline."""
    from pawatch.storage.queries import (
        competing_text,
        members_now,
        pending_disagreements,
        respellings,
    )

    delegation = delegation_id(delegation)
    at = (
        parse_moment(as_of, end_of_day=True, option="--as-of")
        if as_of
        else format_time(datetime.now(UTC))
    )
    with obj.store(create=False) as store:
        known = store.delegation_ids()
        if delegation not in known:
            fail(
                f"no facts recorded for delegation {delegation!r}; known: "
                f"{', '.join(known) or 'none yet'}",
                2,
            )
        facts = store.facts_as_of(delegation, at)
        timeline = [
            c for c in store.delegation_changes(delegation=delegation) if c.detected_at <= at
        ]
        now, disputes, pending, people = [], [], [], []
        if as_of is None:  # what the sources say now
            now = store.delegation_now(delegation)
            disputes = store.open_disagreements(delegation)
            pending = pending_disagreements(store.db, delegation)
            people = members_now(store.db, delegation)
        notes = [n for n in respellings(store.db, delegation) if n["at"] <= at]
    by_source = _group_by_source(facts)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "delegation": delegation,
                    "as_of": at,
                    "now": [row.as_json() for row in now],
                    "disagreements": [_disagreement_json(d) for d in disputes],
                    "members_now": people,
                    "pending_disagreements": [
                        {**_disagreement_json(d), "awaiting": d["awaiting"]} for d in pending
                    ],
                    "sources": {
                        source: {
                            "parliament": _one(attrs.get("delegation")),
                            "seats": {
                                f.attribute.split(":", 1)[1]: int(f.value)
                                for a, fs in attrs.items()
                                if a.startswith("seats:")
                                for f in fs
                            },
                            "plenipotentiary": _one(attrs.get("plenipotentiary")),
                            "plenipotentiary_role": _one(attrs.get("plenipotentiary_role")),
                            "head": _one(attrs.get("head")),
                            "websites": [f.value for f in attrs.get("website", [])],
                            "members": [
                                {"name": f.value, "since": f.valid_from}
                                for f in attrs.get("member", [])
                            ],
                        }
                        for source, attrs in sorted(by_source.items())
                    },
                    "timeline": [c.as_json() for c in timeline],
                    "spelling_notes": notes,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if now:
        echo(f"{delegation} now (what its sources agree on):")
        for row in now:
            label = row.attribute
            stated = ", ".join(f"{s['source']} {s['last_confirmed']}" for s in row.sources)
            if row.disagree:
                values = competing_text([(s["source"], s["value"]) for s in row.sources])
                echo(f"  {label}: SOURCES DISAGREE ({values})")
            else:
                echo(f"  {label}: {_also(row.value, row.spellings)}  [{stated}]")
        if people:
            names = ", ".join(_also(p["name"], p["spellings"]) for p in people)
            echo(f"  members ({len(people)} people): {names}")
        for d in disputes:
            values = competing_text([(c["source"], c["value"]) for c in d["competing"]])
            where = f" on {d['source_id']}" if d["source_id"] else ""
            echo(f"  ! {d['attribute']}: {d['kind'].replace('_', ' ')}{where}: {values}")
        for d in pending:
            values = competing_text([(c["source"], c["value"]) for c in d["competing"]])
            awaiting = ", ".join(d["awaiting"]) or "the next comparison"
            echo(f"  ? {d['attribute']}: sources differ, pending a check of {awaiting}: {values}")
        echo("")
    echo(f"{delegation} as of {at}, per source")
    if not by_source:
        echo("  (nothing known at that time)")
    for source, attrs in sorted(by_source.items()):
        echo(f"\n{source}: {_short(_one(attrs.get('delegation')))}")
        seats = [
            (a.split(":", 1)[1], fs[0]) for a, fs in sorted(attrs.items()) if a.startswith("seats:")
        ]
        if seats:
            echo(
                "  seats: "
                + ", ".join(f"{c} {_short(f.value)} (since {f.valid_from})" for c, f in seats)
            )
        rep = _one(attrs.get("plenipotentiary"))
        if rep:
            role = _one(attrs.get("plenipotentiary_role"))
            echo(f"  plenipotentiary: {_short(rep)}" + (f" ({_short(role)})" if role else ""))
        if attrs.get("head"):
            echo(f"  head of delegation: {_short(_one(attrs.get('head')))}")
        for website in attrs.get("website", []):
            echo(f"  website: {_short(website.value)}")
        members = attrs.get("member", [])
        if members:
            echo(f"  members ({len(members)}): " + ", ".join(_short(f.value) for f in members))
    echo("\nTimeline:")
    if not timeline and not notes:
        echo("  (no changes recorded)")
    waiting = list(notes)  # each respelling note before the first change after it
    for item in timeline:
        while waiting and waiting[0]["at"] <= item.detected_at:
            echo("  " + spelling_line(waiting.pop(0)))
        echo("  " + change_line(item))
    for note in waiting:
        echo("  " + spelling_line(note))


def _disagreement_json(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "attribute": d["attribute"],
        "kind": d["kind"],
        "source": d["source_id"],
        "competing": d["competing"],
        "since": d["since"],
    }


def spelling_line(note: dict[str, Any]) -> str:
    """A respelling, as a note (not a change): the same person, spelled anew."""
    return (
        f"{note['at']} spelling (note): {note['delegation']} {note['attribute']} "
        f"{_short(note['old'])} -> {_short(note['new'])} ({note['source_id']}) "
        f"[snapshots {note['before_snapshot'] or '-'} -> {note['after_snapshot'] or '-'}]"
    )


def _also(shown: str | None, spellings: list[str]) -> str:
    """A value with the other spellings the sources give it: ``Viktor Kogut (also Когут
    Виктор)``."""
    others = [s for s in spellings if s != shown]
    return _short(shown) + (f" (also {', '.join(_short(s) for s in others)})" if others else "")


def _one(facts: list[Any] | None) -> str | None:
    return facts[0].value if facts else None


def _decoded(obj: Context, snapshot_id: int) -> tuple[Any, str]:
    from pawatch.evidence import snapshot_text
    from pawatch.scraper.errors import FetchError

    with obj.store(create=False) as store:
        try:
            snap = store.snapshot(snapshot_id)
        except KeyError:
            fail(f"no snapshot {snapshot_id}", 2)
    try:
        text = snapshot_text(snap)
    except FetchError as exc:
        fail(f"snapshot {snapshot_id} cannot be decoded: {exc}", 1)
    return snap, text


@click.command()
@click.argument("snapshot_id", type=int)
@click.option("--text", "as_text", is_flag=True, help="Readable text instead of the HTML.")
@click.pass_obj
def show(obj: Context, snapshot_id: int, as_text: bool) -> None:
    """Print a stored page (decoded to text) with its source, URL and times."""
    snap, text = _decoded(obj, snapshot_id)
    click.echo(
        printable(f"# snapshot {snap.id} of {snap.source_id}: {redact_url(snap.url)}"), err=True
    )
    click.echo(f"# seen {snap.first_seen} .. {snap.last_seen}, sha256 {snap.sha256}", err=True)
    click.echo(printable(_readable(text, snap.content_type) if as_text else text))


def _readable(text: str, content_type: str | None) -> str:
    from pawatch.evidence import readable_lines

    return "\n".join(readable_lines(text, content_type))


@click.command()
@click.argument("snapshot_a", type=int)
@click.argument("snapshot_b", type=int)
@click.option("--html", "raw", is_flag=True, help="Diff the HTML instead of the readable text.")
@click.pass_obj
def diff(obj: Context, snapshot_a: int, snapshot_b: int, raw: bool) -> None:
    """Unified diff between two stored pages (readable text by default)."""
    snap_a, text_a = _decoded(obj, snapshot_a)
    snap_b, text_b = _decoded(obj, snapshot_b)
    if not raw:
        text_a = _readable(text_a, snap_a.content_type)
        text_b = _readable(text_b, snap_b.content_type)
    lines = difflib.unified_diff(
        text_a.splitlines(),
        text_b.splitlines(),
        f"snapshot {snap_a.id} ({snap_a.first_seen})",
        f"snapshot {snap_b.id} ({snap_b.first_seen})",
        lineterm="",
    )
    output = "\n".join(lines)
    click.echo(printable(output) or "No differences.")


def _popolo(rows: list[dict[str, Any]], overview: list[dict[str, Any]]) -> dict[str, Any]:
    from pawatch.scraper.parsers.names import name_key

    organizations: dict[str, dict[str, Any]] = {}
    for row in overview:
        if row["attribute"] == "delegation":
            organizations.setdefault(
                row["delegation"],
                {
                    "id": f"delegation/{row['delegation']}",
                    "name": row["value"],
                    "classification": "delegation to the CSTO Parliamentary Assembly",
                },
            )
    persons: dict[str, dict[str, Any]] = {}
    latest: dict[str, str] = {}  # person id -> the last_seen of the name shown
    spellings: dict[str, set[str]] = defaultdict(set)
    memberships_out = []
    for row in rows:
        # one person by name key across sources and spellings (Latin and Cyrillic)
        key = row["key"] or name_key(row["value"])
        person_id = f"person/{key.replace(' ', '-')}"
        person = persons.setdefault(person_id, {"id": person_id, "name": row["value"]})
        if row["last_seen"] > latest.get(person_id, ""):  # the latest spelling is shown
            person["name"], latest[person_id] = row["value"], row["last_seen"]
        spellings[person_id].update([row["value"], *row["other_names"]])
        organizations.setdefault(
            row["delegation"],
            {
                "id": f"delegation/{row['delegation']}",
                "name": row["delegation"],
                "classification": "delegation to the CSTO Parliamentary Assembly",
            },
        )
        memberships_out.append(
            {
                "person_id": person_id,
                "organization_id": f"delegation/{row['delegation']}",
                "role": {
                    "member": "member",
                    "head": "head of delegation",
                    "plenipotentiary": "plenipotentiary representative",
                }[row["attribute"]],
                "start_date": row["first_seen"][:10],
                "end_date": row["ended_at"][:10] if row["ended_at"] else None,
                "sources": [
                    {
                        "note": f"pawatch source {row['source_id']}, snapshots "
                        f"{row['first_snapshot']}-{row['end_snapshot'] or 'current'}"
                    }
                ],
            }
        )
    for person_id, person in persons.items():
        others = sorted(spellings[person_id] - {person["name"]})
        if others:
            person["other_names"] = [{"name": name} for name in others]
    return {
        "persons": list(persons.values()),
        "organizations": list(organizations.values()),
        "memberships": memberships_out,
    }


@click.command()
@format_option(
    "json",
    "csv",
    "popolo",
    help="json: delegations and memberships; csv: memberships; "
    "popolo: Popolo persons, organizations and memberships.",
)
@click.option("--delegation", metavar="ID", help="Only this delegation (e.g. KG).")
@click.pass_obj
def export(obj: Context, fmt: str, delegation: str | None) -> None:
    """Export delegations and memberships (members, plenipotentiaries, heads) with start/end
    dates."""
    with obj.store(create=False) as store:
        only = known_delegation(store, delegation) if delegation else None
        rows = [r for r in store.memberships() if only in (None, r["delegation"])]
        overview = [r for r in store.delegations_overview() if only in (None, r["delegation"])]
    if fmt == "popolo":
        click.echo(json.dumps(_popolo(rows, overview), ensure_ascii=False, indent=2))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(
            [
                "delegation",
                "role",
                "name",
                "start",
                "end",
                "source",
                "first_snapshot",
                "end_snapshot",
            ]
        )
        for r in rows:
            writer.writerow(
                [
                    r["delegation"],
                    r["attribute"],
                    r["value"],
                    r["first_seen"],
                    r["ended_at"] or "",
                    r["source_id"],
                    r["first_snapshot"],
                    r["end_snapshot"] or "",
                ]
            )
        sys.stdout.write(buffer.getvalue())
    else:
        current: dict[str, dict[str, Any]] = defaultdict(dict)
        for row in overview:
            entry = current[row["delegation"]].setdefault(row["source_id"], {"seats": {}})
            if row["attribute"] == "delegation":
                entry["parliament"] = row["value"]
            else:
                entry["seats"][row["attribute"].split(":", 1)[1]] = int(row["value"])
        click.echo(
            json.dumps(
                {
                    "delegations": current,
                    "memberships": [
                        {
                            "delegation": r["delegation"],
                            "role": r["attribute"],
                            "name": r["value"],
                            "other_names": r["other_names"],
                            "start": r["first_seen"],
                            "end": r["ended_at"],
                            "source": r["source_id"],
                        }
                        for r in rows
                    ],
                },
                ensure_ascii=False,
                indent=2,
            )
        )


@click.command()
@click.option(
    "--source",
    "source_ids",
    multiple=True,
    metavar="ID",
    help="Only this source (repeatable). Default: every configured source.",
)
@click.pass_obj
def reparse(obj: Context, source_ids: tuple[str, ...]) -> None:
    """Re-derive facts from the stored snapshots with the current parsers (no events).

    Use after a parser changed what it extracts: the history is rebuilt as the new parser
    reads it, so the change in code is never reported as a change in the world.
    """
    import asyncio

    from pawatch.cli.common import select_sources
    from pawatch.pipeline import CPU_WORKERS, reparse_source_bounded
    from pawatch.storage import Store
    from pawatch.workers import WorkerPool

    settings = obj.settings
    sources = select_sources(settings, source_ids) if source_ids else list(settings.sources)

    async def rebuild(store: Store) -> None:
        # each snapshot parsed in a worker within [http] parse_timeout, like `run` does: a
        # stored pathological page becomes a parse failure instead of stalling the command
        pool = WorkerPool(CPU_WORKERS, settings.http.parse_timeout)
        try:
            for source in sources:
                written = await reparse_source_bounded(store, source, pool)
                click.echo(f"{source.id}: {written} fact interval(s) from stored snapshots")
        finally:
            pool.close()

    with obj.store(create=False) as store, obj.writing(store, "reparse"):
        asyncio.run(rebuild(store))
