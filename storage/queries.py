"""Read-only queries behind `changes`, `history` and `export` (the SQL stays in storage)."""

from __future__ import annotations

import json
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


def select_events(
    db: Database,
    *,
    since: str | None = None,
    delegation: str | None = None,
    kinds: tuple[str, ...] = (),
    latest: int | None = None,
) -> list[dict[str, Any]]:
    """Events matching the filters, oldest first (only the ``latest`` N when given)."""
    where, params = ["1 = 1"], []
    if since is not None:
        where.append("detected_at >= ?")
        params.append(since)
    if delegation is not None:
        where.append("delegation = ?")
        params.append(delegation)
    if kinds:
        where.append(f"kind IN ({', '.join('?' * len(kinds))})")
        params.extend(kinds)
    sql = f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY id DESC"
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
    """Every member and plenipotentiary interval, for exports (Popolo memberships)."""
    rows = db.query(
        "SELECT substr(subject, 12) AS delegation, source_id, attribute, key, value, "
        "first_seen, ended_at, first_snapshot, end_snapshot FROM facts "
        "WHERE subject LIKE 'delegation:%' AND attribute IN ('member', 'plenipotentiary', "
        "'head') ORDER BY subject, attribute, first_seen, id"
    )
    return [dict(r) for r in rows]


def delegations_overview(db: Database) -> list[dict[str, Any]]:
    """Current parliament name and seats per delegation and source."""
    rows = db.query(
        "SELECT substr(subject, 12) AS delegation, source_id, attribute, value, first_seen "
        "FROM facts WHERE subject LIKE 'delegation:%' AND ended_at IS NULL "
        "AND (attribute = 'delegation' OR attribute LIKE 'seats:%') ORDER BY subject, source_id"
    )
    return [dict(r) for r in rows]
