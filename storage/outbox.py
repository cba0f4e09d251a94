"""The outbox: which events still have to reach which recipients (all delivery SQL is here).

Rows are created by the ``events_to_outbox`` trigger (migration 0003) in the transaction that
records the event: one row for channel ``all`` and, for an event about a delegation, one for
that delegation's channel. A row moves ``pending`` -> ``sending`` (claimed for one message,
with that message's Message-ID) -> ``delivered`` once the SMTP server accepted the message.
A definite failure puts it back to ``pending``; a failure where the server may have accepted
the message (or a killed process) leaves it ``sending`` with its Message-ID, and the next run
sends that same message again. Rows of a channel nobody receives become ``skipped``.
See docs/email.md.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

ALL = "all"  # the channel of the general recipients


@dataclass(frozen=True)
class InFlight:
    """A message claimed earlier and not confirmed: to be sent again with its Message-ID."""

    message_id: str
    event_ids: tuple[int, ...]


def _rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def skip_channels(conn: sqlite3.Connection, keep: Collection[str], now: str) -> int:
    """Mark the open rows of channels not in ``keep`` skipped (nobody receives them)."""
    marks = ",".join("?" * len(keep))
    cur = conn.execute(
        "UPDATE outbox SET status = 'skipped', delivered_at = ?, "
        "last_error = 'no recipients for this channel' "
        f"WHERE status = 'pending' AND channel NOT IN ({marks or 'NULL'}) "
        "AND channel NOT LIKE 'ch:%'",  # [[channels]] rows: pawatch/channels.py
        (now, *keep),
    )
    return cur.rowcount


def open_event_ids(conn: sqlite3.Connection, channel: str) -> list[int]:
    """Events of a channel not delivered yet (pending or sending)."""
    rows = conn.execute(
        "SELECT event_id FROM outbox WHERE channel = ? AND status IN ('pending', 'sending') "
        "ORDER BY event_id",
        (channel,),
    )
    return [r[0] for r in rows]


def has_pending(conn: sqlite3.Connection, channel: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM outbox WHERE channel = ? AND status = 'pending' LIMIT 1", (channel,)
    ).fetchone()
    return row is not None


def count_open(conn: sqlite3.Connection) -> int:
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')"
        ).fetchone()[0]
    )


def in_flight(conn: sqlite3.Connection, channel: str, stale_before: str) -> list[InFlight]:
    """Messages of a channel claimed before ``stale_before`` (or released as uncertain)."""
    rows = conn.execute(
        "SELECT message_id, event_id FROM outbox WHERE channel = ? AND status = 'sending' "
        "AND (sending_at IS NULL OR sending_at < ?) ORDER BY message_id, event_id",
        (channel, stale_before),
    ).fetchall()
    groups: dict[str, list[int]] = {}
    for message_id, event_id in rows:
        groups.setdefault(message_id, []).append(event_id)
    return [InFlight(m, tuple(ids)) for m, ids in groups.items()]


def busy(conn: sqlite3.Connection, channel: str, stale_before: str) -> bool:
    """True when another process claimed rows of this channel recently."""
    row = conn.execute(
        "SELECT 1 FROM outbox WHERE channel = ? AND status = 'sending' AND sending_at >= ? LIMIT 1",
        (channel, stale_before),
    ).fetchone()
    return row is not None


def retake(conn: sqlite3.Connection, message_id: str, stale_before: str, now: str) -> bool:
    """Take over an in-flight message for a new attempt; False if someone else has it."""
    cur = conn.execute(
        "UPDATE outbox SET sending_at = ?, attempts = attempts + 1 "
        "WHERE message_id = ? AND status = 'sending' "
        "AND (sending_at IS NULL OR sending_at < ?)",
        (now, message_id, stale_before),
    )
    return cur.rowcount > 0


def claim(
    conn: sqlite3.Connection, channel: str, now: str, message_id: Callable[[list[int]], str]
) -> tuple[list[int], str] | None:
    """Claim every pending row of a channel for one message: ``sending``, with the
    Message-ID ``message_id(event_ids)``. Returns the event ids and that id (None if none).

    The rows are written first under a random token, so two processes never claim the same
    row (the second one's UPDATE waits for the first one's transaction and finds nothing).
    """
    token = f"claim-{uuid.uuid4().hex}"
    conn.execute(
        "UPDATE outbox SET status = 'sending', message_id = ?, sending_at = ?, "
        "attempts = attempts + 1 WHERE channel = ? AND status = 'pending'",
        (token, now, channel),
    )
    rows = conn.execute(
        "SELECT event_id FROM outbox WHERE message_id = ? ORDER BY event_id", (token,)
    )
    ids = [r[0] for r in rows]
    if not ids:
        return None
    mid = message_id(ids)
    conn.execute("UPDATE outbox SET message_id = ? WHERE message_id = ?", (mid, token))
    return ids, mid


def mark_delivered(
    conn: sqlite3.Connection, message_id: str, now: str, note: str | None = None
) -> int:
    """The server accepted the message: its rows are delivered (``note``: refused recipients)."""
    cur = conn.execute(
        "UPDATE outbox SET status = 'delivered', delivered_at = ?, last_error = ? "
        "WHERE message_id = ? AND status = 'sending'",
        (now, note, message_id),
    )
    return cur.rowcount


def release(conn: sqlite3.Connection, message_id: str, error: str) -> None:
    """Definitely not accepted: back to pending, to be merged into the next message."""
    conn.execute(
        "UPDATE outbox SET status = 'pending', message_id = NULL, sending_at = NULL, "
        "last_error = ? WHERE message_id = ? AND status = 'sending'",
        (error, message_id),
    )


def keep_uncertain(conn: sqlite3.Connection, message_id: str, error: str) -> None:
    """Maybe accepted: stays ``sending`` with its Message-ID; the next run sends it again."""
    conn.execute(
        "UPDATE outbox SET sending_at = NULL, last_error = ? "
        "WHERE message_id = ? AND status = 'sending'",
        (error, message_id),
    )


def mark_printed(conn: sqlite3.Connection, channel: str, ids: Sequence[int], now: str) -> None:
    """Stdout delivery: the report was written, its rows are delivered."""
    marks = ",".join("?" * len(ids))
    conn.execute(
        f"UPDATE outbox SET status = 'delivered', delivered_at = ?, attempts = attempts + 1 "
        f"WHERE channel = ? AND status IN ('pending', 'sending') AND event_id IN ({marks})",
        (now, channel, *ids),
    )


# ------------------------------------------------------------------ reading events


def _decode(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row["details"] = json.loads(row["details"]) if row.get("details") else {}
    return rows


def events_by_id(conn: sqlite3.Connection, ids: Sequence[int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        out += _rows(conn, f"SELECT * FROM events WHERE id IN ({marks}) ORDER BY id", chunk)
    return _decode(out)


def events_since(conn: sqlite3.Connection, since: str) -> list[dict[str, Any]]:
    return _decode(_rows(conn, "SELECT * FROM events WHERE detected_at >= ? ORDER BY id", (since,)))


def problems(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Sources failing (alerted) or with a broken parse, now."""
    return _rows(
        conn,
        """
        SELECT source_id, url, delegation, health AS condition,
               CASE health WHEN 'failing' THEN failing_since ELSE broken_since END AS since,
               CASE health WHEN 'failing' THEN last_error ELSE parse_error END AS error,
               consecutive_failures
        FROM source_health WHERE health IN ('failing', 'broken') ORDER BY source_id
        """,
    )


# ------------------------------------------------------------------ digest and health state


def get_state(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM delivery_state WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_state(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO delivery_state (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def health_notices(conn: sqlite3.Connection) -> dict[tuple[str, str], tuple[str | None, str]]:
    """(source_id, condition) -> (since, last_sent) of the problems already notified."""
    rows = conn.execute("SELECT source_id, condition, since, last_sent FROM health_notices")
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def record_health_notices(
    conn: sqlite3.Connection, shown: Sequence[tuple[str, str, str | None]], now: str
) -> None:
    """Remember that these (source_id, condition, since) problems were sent at ``now``."""
    conn.executemany(
        "INSERT INTO health_notices (source_id, condition, since, last_sent) VALUES (?,?,?,?) "
        "ON CONFLICT(source_id, condition) DO UPDATE SET since = excluded.since, "
        "last_sent = excluded.last_sent",
        [(s, c, since, now) for s, c, since in shown],
    )


def prune_health_notices(conn: sqlite3.Connection, current: Collection[tuple[str, str]]) -> None:
    """Forget notices of problems that are over (a new episode alerts again)."""
    for source_id, condition in list(health_notices(conn)):
        if (source_id, condition) not in current:
            conn.execute(
                "DELETE FROM health_notices WHERE source_id = ? AND condition = ?",
                (source_id, condition),
            )
