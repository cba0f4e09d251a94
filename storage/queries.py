"""Read-only queries behind `changes`, `history` and `export` (the SQL stays in storage)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

EVENT_FIELDS = (
    "id",
    "kind",
    "detected_at",
    "delegation",
    "source",
    "attribute",
    "old",
    "new",
    "url",
    "before_snapshot",
    "after_snapshot",
)


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    """The stable JSON shape of one event (documented in the README)."""
    out = {name: row[name] for name in EVENT_FIELDS if name != "source"}
    out["source"] = row["source_id"]
    out["details"] = json.loads(row["details"]) if row.get("details") else None
    return {name: out[name] for name in (*EVENT_FIELDS, "details")}


def _event_filters(
    since: str | None, delegation: str | None, kinds: tuple[str, ...]
) -> tuple[list[str], list[Any]]:
    """WHERE terms and parameters for the event filters every query of events takes (the
    events table is ``e``: ``_latest_events``)."""
    where: list[str] = []
    params: list[Any] = []
    if since is not None:
        where.append("e.detected_at >= ?")
        params.append(since)
    if delegation is not None:
        where.append("e.delegation = ?")
        params.append(delegation)
    if kinds:
        where.append(f"e.kind IN ({', '.join('?' * len(kinds))})")
        params.extend(kinds)
    return where, params


def select_events(
    db: Database,
    *,
    since: str | None = None,
    delegation: str | None = None,
    kinds: tuple[str, ...] = (),
    latest: int | None = None,
) -> list[dict[str, Any]]:
    """Events matching the filters, oldest first (only the ``latest`` N when given)."""
    where, params = _event_filters(since, delegation, kinds)
    return _latest_events(db, where, params, latest)


def _latest_events(
    db: Database, where: list[str], params: list[Any], latest: int | None
) -> list[dict[str, Any]]:
    """The events (``e``) matching ``where``, oldest first; only the ``latest`` N if given."""
    sql = f"SELECT e.* FROM events e WHERE {' AND '.join(where) or '1 = 1'} ORDER BY e.id DESC"
    if latest is not None:
        sql += f" LIMIT {int(latest)}"
    return [dict(r) for r in db.query(sql, params)][::-1]


@dataclass(frozen=True)
class FactAt:
    source_id: str
    attribute: str
    key: str
    value: str
    valid_from: str
    valid_to: str | None
    first_snapshot: int | None


def facts_as_of(db: Database, delegation: str, at: str) -> list[FactAt]:
    """The delegation's facts valid at ``at`` (first_seen <= at < ended_at), per source."""
    rows = db.conn.execute(
        "SELECT source_id, attribute, key, value, first_seen, ended_at, first_snapshot "
        "FROM facts WHERE subject = ? AND first_seen <= ? AND (ended_at IS NULL OR ended_at > ?) "
        "ORDER BY source_id, attribute, id",
        (f"delegation:{delegation}", at, at),
    )
    return [FactAt(*r) for r in rows]


def delegation_ids(db: Database) -> list[str]:
    rows = db.conn.execute(
        "SELECT DISTINCT substr(subject, 12) FROM facts WHERE subject LIKE 'delegation:%' "
        "ORDER BY 1"
    )
    return [r[0] for r in rows]


def memberships(db: Database) -> list[dict[str, Any]]:
    """Every member, plenipotentiary and head period, for exports (Popolo memberships): one
    per person per source (``person_periods``: a respelling continues the period), with
    the latest spelling (``value``), the person's key and ``other_names`` (the person's
    other spellings on any source of the delegation)."""
    rows = db.query(
        "SELECT delegation, source_id, attribute, name_key AS key, name AS value, other_names, "
        "valid_from AS first_seen, valid_to AS ended_at, last_seen, first_snapshot, "
        "end_snapshot FROM person_periods ORDER BY delegation, attribute, valid_from, "
        "COALESCE(valid_to, '9999'), source_id"
    )
    out = [dict(r) for r in rows]
    for row in out:
        row["other_names"] = json.loads(row["other_names"]) if row["other_names"] else []
    return out


def members_now(db: Database, delegation: str) -> list[dict[str, Any]]:
    """``delegation_members_now``: each person its sources list now, once (by name key),
    with every spelling (Latin on one site, Cyrillic on another) and the sources."""
    rows = [
        dict(r)
        for r in db.query(
            "SELECT name, name_key, source_count, sources, spellings FROM "
            "delegation_members_now WHERE delegation = ? ORDER BY name",
            [delegation],
        )
    ]
    for row in rows:
        row["sources"] = sorted(json.loads(row["sources"]), key=lambda s: s["source"])
        row["spellings"] = json.loads(row["spellings"])
    return rows


def delegations_overview(db: Database) -> list[dict[str, Any]]:
    """Current parliament name and seats per delegation and source."""
    rows = db.query(
        "SELECT substr(subject, 12) AS delegation, source_id, attribute, value, first_seen "
        "FROM facts WHERE subject LIKE 'delegation:%' AND ended_at IS NULL "
        "AND (attribute = 'delegation' OR attribute LIKE 'seats:%') ORDER BY subject, source_id"
    )
    return [dict(r) for r in rows]


# ------------------------------------------------------------------ the delegation as the unit


def disagreements_now(
    conn: sqlite3.Connection,
) -> dict[tuple[str, str, str | None], tuple[tuple[str, str], ...]]:
    """The disagreements the facts show now: ``(delegation, attribute, page or None)`` ->
    the competing ``(source, value)`` pairs.

    A delegation's seat counts are one finding (attribute ``seats``: English block 7 + 4,
    Russian block 6 + 3 is one disagreement, each source's value listing its differing
    counts); a page whose stated seat total and listed members differ is another
    (attribute ``members``, pairs ``("stated", n), ("listed", m)``).
    """
    parts: dict[tuple[str, str], dict[str, list[str]]] = {}
    for delegation, attribute, sources in conn.execute(
        "SELECT delegation, attribute, sources FROM delegation_now WHERE disagree "
        "ORDER BY delegation, attribute = 'seats:total', attribute"
    ):
        family = "seats" if attribute.startswith("seats:") else attribute
        per_source = parts.setdefault((delegation, family), {})
        for s in json.loads(sources):
            value = s["value"]
            if family == "seats":
                value = f"{attribute.removeprefix('seats:')} {value}"
            per_source.setdefault(s["source"], []).append(value)
    found: dict[tuple[str, str, str | None], tuple[tuple[str, str], ...]] = {
        (delegation, family, None): tuple(
            (source, ", ".join(values)) for source, values in sorted(per_source.items())
        )
        for (delegation, family), per_source in parts.items()
    }
    for delegation, source_id, stated, listed in conn.execute(
        "SELECT delegation, source_id, stated, listed FROM stated_vs_listed "
        "WHERE listed > 0 AND listed != stated"
    ):
        found[(delegation, "members", source_id)] = (
            ("stated", str(stated)),
            ("listed", str(listed)),
        )
    return found


def compared_through(conn: sqlite3.Connection) -> int:
    """The last ``fetch_log`` id the previous comparison of the sources saw (0: none yet)."""
    row = conn.execute("SELECT compared_through FROM disagreement_state").fetchone()
    return int(row[0]) if row else 0


def awaited_sources(conn: sqlite3.Connection) -> dict[int, list[str]]:
    """Each pending disagreement (``pending_disagreements``) -> the sources involved that
    have no good check since it began (or whose parse is broken now); empty: confirmed."""
    return {
        r[0]: sorted(json.loads(r[1]))
        for r in conn.execute("SELECT id, awaiting FROM pending_disagreements")
    }


def competing_text(competing: Sequence[tuple[str, str]]) -> str:
    """``pacsto-en: 7; pacsto-ru: 6`` (``stated: 7; listed: 6``)."""
    return "; ".join(f"{source}: {value}" for source, value in competing)


def agreed_value(
    conn: sqlite3.Connection, delegation: str, attribute: str, source_id: str | None
) -> str | None:
    """The value the sources agree on now (a page's stated total, for stated vs listed;
    every seat count, for ``seats``)."""
    if source_id is not None:
        row = conn.execute(
            "SELECT stated FROM stated_vs_listed WHERE delegation = ? AND source_id = ?",
            (delegation, source_id),
        ).fetchone()
        return None if row is None else str(row[0])
    if attribute == "seats":
        rows = conn.execute(
            "SELECT attribute, value FROM delegation_now WHERE delegation = ? "
            "AND attribute LIKE 'seats:%' AND NOT disagree "
            "ORDER BY attribute = 'seats:total', attribute",
            (delegation,),
        ).fetchall()
        return ", ".join(f"{a.removeprefix('seats:')} {v}" for a, v in rows) or None
    row = conn.execute(
        "SELECT value FROM delegation_now WHERE delegation = ? AND attribute = ? AND NOT disagree",
        (delegation, attribute),
    ).fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True)
class Witness:
    """One source's evidence of a delegation-level change (its own event)."""

    event_id: int
    source: str | None
    detected_at: str
    url: str | None
    before_snapshot: int | None
    after_snapshot: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "detected_at": self.detected_at,
            "url": self.url,
            "before_snapshot": self.before_snapshot,
            "after_snapshot": self.after_snapshot,
        }


@dataclass(frozen=True)
class DelegationChange:
    """One change, however many sources show it: the first source's event (``id`` is its
    event id; ``change_id`` the delegation-level change, None for an event that is not about
    a delegation's composition: news, page text, health, disagreements) and every witness,
    oldest first (the first one included)."""

    id: int
    change_id: int | None
    kind: str
    detected_at: str  # first detected
    delegation: str | None
    source: str | None  # the first source
    attribute: str | None
    old: str | None
    new: str | None
    url: str | None
    before_snapshot: int | None
    after_snapshot: int | None
    details: dict[str, Any] | None
    sources: tuple[Witness, ...]

    @property
    def row(self) -> dict[str, Any]:
        """The first event's row shape (``source_id``), for code that reads event rows."""
        out = self.as_json()
        out["source_id"] = out.pop("source")
        return out

    def as_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``pawatch changes --format json`` (README): an event's
        (``event_json``) with the change and its witnesses."""
        out = {name: getattr(self, name) for name in (*EVENT_FIELDS, "details")}
        out["change_id"] = self.change_id
        out["sources"] = [w.as_json() for w in self.sources]
        return out


def delegation_changes(
    db: Database,
    *,
    since: str | None = None,
    ids: Sequence[int] | None = None,
    delegation: str | None = None,
    kinds: tuple[str, ...] = (),
    latest: int | None = None,
) -> list[DelegationChange]:
    """Changes as users think of them, oldest first: one per delegation-level change with
    every source that shows it, plus every event that is not a delegation's change.

    ``since`` filters on when a change was first detected; ``ids`` selects by event id
    (any witness's event id selects its whole change: an outbox row points at the first).
    """
    where, params = _event_filters(since, delegation, kinds)
    where.insert(
        0,
        "(e.change_id IS NULL OR NOT EXISTS (SELECT 1 FROM events p "
        "WHERE p.change_id = e.change_id AND p.id < e.id))",
    )
    leads: list[dict[str, Any]] = []
    if ids is not None:
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            sql = (
                f"SELECT e.* FROM events e WHERE {' AND '.join(where)} AND (e.id IN ({marks}) "
                f"OR e.change_id IN (SELECT change_id FROM events WHERE id IN ({marks}) "
                "AND change_id IS NOT NULL)) ORDER BY e.id"
            )
            leads += [dict(r) for r in db.query(sql, [*params, *chunk, *chunk])]
        leads = list({r["id"]: r for r in leads}.values())
        leads.sort(key=lambda r: r["id"])
    else:
        leads = _latest_events(db, where, params, latest)
    witnesses: dict[int, list[Witness]] = {}
    change_ids = [r["change_id"] for r in leads if r["change_id"] is not None]
    for start in range(0, len(change_ids), 500):
        chunk = change_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for r in db.conn.execute(
            "SELECT change_id, id, source_id, detected_at, url, before_snapshot, after_snapshot "
            f"FROM events WHERE change_id IN ({marks}) ORDER BY id",
            chunk,
        ):
            witnesses.setdefault(r[0], []).append(Witness(*r[1:]))
    return [
        DelegationChange(
            **event_json(r),
            change_id=r["change_id"],
            sources=tuple(
                witnesses.get(r["change_id"])
                or [
                    Witness(
                        r["id"],
                        r["source_id"],
                        r["detected_at"],
                        r["url"],
                        r["before_snapshot"],
                        r["after_snapshot"],
                    )
                ]
            ),
        )
        for r in leads
    ]


@dataclass(frozen=True)
class NowRow:
    """One row of ``delegation_now``: a delegation attribute now, across its sources."""

    delegation: str
    attribute: str
    key: str  # a website's key; empty otherwise
    value: str | None  # what the sources agree on (None when they disagree)
    disagree: bool
    competing: list[str]  # the competing values, when they disagree
    sources: list[dict[str, Any]]  # {source, value, last_confirmed}

    @property
    def spellings(self) -> list[str]:
        """The values the sources state, distinct: one person's spellings (Latin on one
        site, Cyrillic on another) when they agree by name key."""
        return sorted({str(s["value"]) for s in self.sources})

    def as_json(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "key": self.key,
            "value": self.value,
            "disagree": self.disagree,
            "competing_values": self.competing,
            "sources": self.sources,
            "spellings": self.spellings,
        }


def delegation_now(db: Database, delegation: str) -> list[NowRow]:
    rows = db.conn.execute(
        "SELECT delegation, attribute, key, value, disagree, competing_values, sources "
        "FROM delegation_now WHERE delegation = ? ORDER BY attribute, key",
        (delegation,),
    )
    return [
        NowRow(
            r[0],
            r[1],
            r[2],
            r[3],
            bool(r[4]),
            json.loads(r[5]) if r[5] else [],
            sorted(json.loads(r[6]), key=lambda s: s["source"]),
        )
        for r in rows
    ]


def _disagreement_rows(db: Database, view: str, delegation: str) -> list[dict[str, Any]]:
    rows = [
        dict(r)
        for r in db.query(
            f"SELECT * FROM {view} WHERE delegation = ? ORDER BY attribute", [delegation]
        )
    ]
    for row in rows:
        row["competing"] = json.loads(row["competing"])
    return rows


def open_disagreements(db: Database, delegation: str) -> list[dict[str, Any]]:
    """The ``disagreements`` view (open ones), with ``competing`` decoded."""
    return _disagreement_rows(db, "disagreements", delegation)


def pending_disagreements(db: Database, delegation: str) -> list[dict[str, Any]]:
    """The ``pending_disagreements`` view: sources that differ now, not yet a finding (a
    source involved has not been checked since), with ``competing`` and ``awaiting``
    decoded."""
    rows = _disagreement_rows(db, "pending_disagreements", delegation)
    for row in rows:
        row["awaiting"] = sorted(json.loads(row["awaiting"]))
    return rows


def respellings(db: Database, delegation: str) -> list[dict[str, Any]]:
    """The ``respellings`` view for one delegation, oldest first: each time a source's
    shown spelling of a plenipotentiary or head changed (a note, never an event)."""
    return [
        dict(r)
        for r in db.query(
            "SELECT * FROM respellings WHERE delegation = ? ORDER BY at, source_id, attribute",
            [delegation],
        )
    ]
