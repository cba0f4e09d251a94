"""The outbox: which events still have to reach which recipients (all delivery SQL is here).

Rows are created by the ``events_to_outbox`` trigger (migrations 0003, 0007) in the
transaction that records the event: one row for channel ``all`` and, for an event about a
delegation, one for that delegation's channel. A row moves ``pending`` -> ``sending`` (claimed
for one message, with that message's Message-ID) -> ``delivered`` once the SMTP server
accepted the message. What happens to a message that was not accepted is decided
here, once, for email and every ``[[channels]]`` kind (``Outbox.settle``, ``resend_or_fail``):
a permanent refusal (SMTP 5xx, HTTP 4xx but 408/429) makes its rows ``failed`` with the
receiver's words; a definite temporary failure (SMTP 4xx, a refused connection, HTTP 5xx,
408, 429) puts them back to ``pending``, at most ``max_resends`` times in a row, then they are
``failed``; a failure where the receiver may have accepted the message (or a killed process)
leaves them ``sending`` with its id, and the next run sends that same message again, at most
``max_resends`` times, then they are ``failed``. A recipient refused with a 4xx while the
others accepted the message gets rows of its own, channel ``<channel>>address``, retried like
any other. Rows of a channel nobody receives become ``skipped``. See docs/email.md.

``Outbox`` is the interface (``Store.outbox``); the caller wraps writes in
``Store.transaction()``.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

ALL = "all"  # the channel of the general recipients

# How a message that was not accepted failed (``classify``), for ``Outbox.settle``:
TEMPORARY = "temporary"  # definitely not taken, for now: pending again (retried, capped)
PERMANENT = "permanent"  # refused for good: failed at once, with the receiver's words
UNCERTAIN = "uncertain"  # maybe taken: stays in flight, re-sent under the same id (capped)
EXTRA = "ch:"  # "ch:<name>": a [[channels]] table's rows (pawatch/channels.py)
RECIPIENT_SEP = ">"  # "<channel>>address": one recipient's retry of a channel's events


def recipient_channel(channel: str, address: str) -> str:
    return f"{channel}{RECIPIENT_SEP}{address}"


def split_channel(channel: str) -> tuple[str, str | None]:
    """``"all>a@b.org"`` -> ``("all", "a@b.org")``; ``"KG"`` -> ``("KG", None)``."""
    base, sep, address = channel.partition(RECIPIENT_SEP)
    return base, (address if sep else None)


@dataclass(frozen=True)
class InFlight:
    """A message claimed earlier and not confirmed: to be sent again with its Message-ID."""

    message_id: str
    event_ids: tuple[int, ...]
    resends: int = 0  # how many times it was sent again already
    last_error: str | None = None


@dataclass(frozen=True)
class FailedRows:
    """Outbox rows that will not be sent again without a person (``pawatch status``)."""

    count: int
    last_error: str | None
    last_at: str | None


@dataclass(frozen=True)
class Settled:
    """What ``Outbox.settle`` did with a message's rows."""

    failed: int  # rows marked failed (for good, or past max_resends failures)
    kept: int  # rows pending again or still in flight
    error: str  # the reason stored in their last_error


def classify(*, permanent: bool, uncertain: bool, resend: bool = False) -> str:
    """The policy's failure kind. A re-send that fails stays in flight whatever the reason:
    an earlier copy may have arrived."""
    if permanent:
        return PERMANENT
    return UNCERTAIN if uncertain or resend else TEMPORARY


def unconfirmed_reason(flight: InFlight, max_resends: int) -> str:
    return (
        f"not confirmed by the server after {flight.resends + 1} send(s) under the same "
        f"message id (max_resends = {max_resends}); last error: {flight.last_error}"
    )


def _rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _decode(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row["details"] = json.loads(row["details"]) if row.get("details") else {}
    return rows


class Outbox:
    """The outbox of one database connection (``Store.outbox``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # ------------------------------------------------------------------ channels and rows

    def skip_channels(self, keep: Collection[str], now: str) -> int:
        """Mark the open rows of channels not in ``keep`` skipped (nobody receives them);
        [[channels]] rows: ``skip_extra_channels``."""
        return self._skip(keep, now, "no recipients for this channel", extra=False)

    def _skip(self, keep: Collection[str], now: str, reason: str, *, extra: bool) -> int:
        marks = ",".join("?" * len(keep))
        cur = self.conn.execute(
            "UPDATE outbox SET status = 'skipped', delivered_at = ?, last_error = ? "
            f"WHERE status = 'pending' AND channel {'' if extra else 'NOT '}LIKE '{EXTRA}%' "
            f"AND channel NOT IN ({marks or 'NULL'})",
            (now, reason, *keep),
        )
        return cur.rowcount

    def open_channels(self) -> list[str]:
        """Channels with rows not delivered yet (pending or sending)."""
        rows = self.conn.execute(
            "SELECT DISTINCT channel FROM outbox WHERE status IN ('pending', 'sending') "
            "ORDER BY channel"
        )
        return [r[0] for r in rows]

    def open_event_ids(self, channel: str) -> list[int]:
        """Events of a channel not delivered yet (pending or sending)."""
        rows = self.conn.execute(
            "SELECT event_id FROM outbox WHERE channel = ? AND status IN ('pending', 'sending') "
            "ORDER BY event_id",
            (channel,),
        )
        return [r[0] for r in rows]

    def has_pending(self, channel: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM outbox WHERE channel = ? AND status = 'pending' LIMIT 1", (channel,)
        ).fetchone()
        return row is not None

    def count_open(self) -> int:
        return int(
            self.conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')"
            ).fetchone()[0]
        )

    def failed(self) -> FailedRows:
        """The rows marked ``failed`` (refused for good, or never confirmed)."""
        row = self.conn.execute(
            "SELECT COUNT(*), "
            "(SELECT last_error FROM outbox WHERE status = 'failed' ORDER BY sending_at DESC, "
            "id DESC LIMIT 1), MAX(sending_at) FROM outbox WHERE status = 'failed'"
        ).fetchone()
        return FailedRows(int(row[0]), row[1], row[2])

    def in_flight(self, channel: str, stale_before: str) -> list[InFlight]:
        """Messages of a channel claimed before ``stale_before`` (or released as uncertain)."""
        rows = self.conn.execute(
            "SELECT message_id, event_id, resends, last_error FROM outbox "
            "WHERE channel = ? AND status = 'sending' "
            "AND (sending_at IS NULL OR sending_at < ?) ORDER BY message_id, event_id",
            (channel, stale_before),
        ).fetchall()
        groups: dict[str, list[int]] = {}
        info: dict[str, tuple[int, str | None]] = {}
        for message_id, event_id, resends, last_error in rows:
            groups.setdefault(message_id, []).append(event_id)
            old = info.get(message_id, (0, None))
            info[message_id] = (max(old[0], resends), old[1] or last_error)
        return [InFlight(m, tuple(ids), *info[m]) for m, ids in groups.items()]

    def busy(self, channel: str, stale_before: str) -> bool:
        """True when another process claimed rows of this channel recently."""
        row = self.conn.execute(
            "SELECT 1 FROM outbox WHERE channel = ? AND status = 'sending' AND sending_at >= ? "
            "LIMIT 1",
            (channel, stale_before),
        ).fetchone()
        return row is not None

    def retake(self, message_id: str, stale_before: str, now: str) -> bool:
        """Take over an in-flight message for a re-send; False if someone else has it."""
        cur = self.conn.execute(
            "UPDATE outbox SET sending_at = ?, attempts = attempts + 1, resends = resends + 1 "
            "WHERE message_id = ? AND status = 'sending' "
            "AND (sending_at IS NULL OR sending_at < ?)",
            (now, message_id, stale_before),
        )
        return cur.rowcount > 0

    def claim(
        self, channel: str, now: str, message_id: Callable[[list[int]], str]
    ) -> tuple[list[int], str] | None:
        """Claim every pending row of a channel for one message: ``sending``, with the
        Message-ID ``message_id(event_ids)``. Returns the event ids and that id (None if none).

        The rows are written first under a random token, so two processes never claim the
        same row (the second one's UPDATE waits for the first one's transaction, finds none).
        """
        token = f"claim-{uuid.uuid4().hex}"
        self.conn.execute(
            "UPDATE outbox SET status = 'sending', message_id = ?, sending_at = ?, "
            "attempts = attempts + 1, resends = 0 WHERE channel = ? AND status = 'pending'",
            (token, now, channel),
        )
        rows = self.conn.execute(
            "SELECT event_id FROM outbox WHERE message_id = ? ORDER BY event_id", (token,)
        )
        ids = [r[0] for r in rows]
        if not ids:
            return None
        mid = message_id(ids)
        self.conn.execute("UPDATE outbox SET message_id = ? WHERE message_id = ?", (mid, token))
        return ids, mid

    def mark_delivered(self, message_id: str, now: str, note: str | None = None) -> int:
        """The server accepted the message: its rows are delivered (``note``: refused
        recipients)."""
        cur = self.conn.execute(
            "UPDATE outbox SET status = 'delivered', delivered_at = ?, last_error = ?, "
            "failures = 0 WHERE message_id = ? AND status = 'sending'",
            (now, note, message_id),
        )
        return cur.rowcount

    def retry_for(self, channel: str, address: str, event_ids: Sequence[int], now: str) -> int:
        """A recipient refused a channel's message with a 4xx: its own pending rows for those
        events (channel ``<channel>>address``), sent to it alone later."""
        target = recipient_channel(split_channel(channel)[0], address)
        cur = self.conn.executemany(
            "INSERT INTO outbox (event_id, channel, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (event_id, channel) DO NOTHING",
            [(event_id, target, now) for event_id in event_ids],
        )
        return cur.rowcount

    def release(self, message_id: str, error: str) -> int:
        """Definitely not accepted, for now: back to pending, merged into the next message."""
        return self.conn.execute(
            "UPDATE outbox SET status = 'pending', message_id = NULL, sending_at = NULL, "
            "last_error = ? WHERE message_id = ? AND status = 'sending'",
            (error, message_id),
        ).rowcount

    def fail(self, message_id: str, error: str, now: str) -> int:
        """Never to be sent again without a person: the server refused it for good, or it
        stayed unconfirmed after the allowed re-sends. ``status`` shows them."""
        cur = self.conn.execute(
            "UPDATE outbox SET status = 'failed', sending_at = ?, last_error = ? "
            "WHERE message_id = ? AND status = 'sending'",
            (now, error, message_id),
        )
        return cur.rowcount

    def retry_failed(self) -> int:
        """A person fixed the cause: the ``failed`` rows are pending again (a new message)."""
        cur = self.conn.execute(
            "UPDATE outbox SET status = 'pending', message_id = NULL, sending_at = NULL, "
            "resends = 0, failures = 0 WHERE status = 'failed'"
        )
        return cur.rowcount

    def settle(
        self,
        message_id: str,
        failure: str,
        error: str,
        now: str,
        max_resends: int,
        *,
        counted: bool = True,
    ) -> Settled:
        """The delivery policy for a message that was not accepted (``failure``: see
        ``classify``), the same for email and every channel. A temporary failure counts
        against each row (not when ``counted`` is false: nothing was tried); a row past
        ``max_resends`` failures in a row is ``failed`` with the reason."""
        if failure == PERMANENT:
            return Settled(self.fail(message_id, error, now), 0, error)
        if failure == UNCERTAIN:
            return Settled(0, self.keep_uncertain(message_id, error), error)
        if counted:
            self.conn.execute(
                "UPDATE outbox SET failures = failures + 1 "
                "WHERE message_id = ? AND status = 'sending'",
                (message_id,),
            )
        row = self.conn.execute(
            "SELECT MAX(failures) FROM outbox WHERE message_id = ? AND status = 'sending'",
            (message_id,),
        ).fetchone()
        tries = int(row[0] or 0)
        reason = error
        failed = 0
        if tries > max_resends:
            reason = (
                f"not accepted after {tries} tries (max_resends = {max_resends}); "
                f"last error: {error}"
            )
            failed = self.conn.execute(
                "UPDATE outbox SET status = 'failed', sending_at = ?, last_error = ? "
                "WHERE message_id = ? AND status = 'sending' AND failures > ?",
                (now, reason, message_id, max_resends),
            ).rowcount
        kept = self.release(message_id, error)
        return Settled(failed, kept, reason if failed and not kept else error)

    def resend_or_fail(
        self, flight: InFlight, max_resends: int, stale_before: str, now: str
    ) -> str | None:
        """A message left in flight: ``"resend"`` (taken again, to be sent under the same
        id), ``"failed"`` (re-sent ``max_resends`` times already: given up, its rows failed
        with ``unconfirmed_reason``), or None (another process has it)."""
        if flight.resends >= max_resends:
            reason = unconfirmed_reason(flight, max_resends)
            return "failed" if self.fail(flight.message_id, reason, now) else None
        return "resend" if self.retake(flight.message_id, stale_before, now) else None

    def keep_uncertain(self, message_id: str, error: str) -> int:
        """Maybe accepted: stays ``sending`` with its Message-ID; the next run sends it again."""
        return self.conn.execute(
            "UPDATE outbox SET sending_at = NULL, last_error = ? "
            "WHERE message_id = ? AND status = 'sending'",
            (error, message_id),
        ).rowcount

    def mark_printed(self, channel: str, ids: Sequence[int], now: str) -> None:
        """Stdout delivery: the report was written, its rows are delivered."""
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self.conn.execute(
                "UPDATE outbox SET status = 'delivered', delivered_at = ?, "
                "attempts = attempts + 1 WHERE channel = ? AND status IN ('pending', 'sending') "
                f"AND event_id IN ({marks})",
                (now, channel, *chunk),
            )

    # ------------------------------------------------------------------ reading events

    def events_by_id(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out += _rows(
                self.conn, f"SELECT * FROM events WHERE id IN ({marks}) ORDER BY id", chunk
            )
        return _decode(out)

    def events_since(self, since: str) -> list[dict[str, Any]]:
        return _decode(
            _rows(self.conn, "SELECT * FROM events WHERE detected_at >= ? ORDER BY id", (since,))
        )

    def problems(self) -> list[dict[str, Any]]:
        """Sources failing (alerted), with a broken parse, or with a degraded one (a part of
        the page unreadable, its facts held; since its first degraded parse after the last
        whole one), now: one row per source, the worst condition."""
        return _rows(
            self.conn,
            """
            SELECT h.source_id, h.url, h.delegation, h.health AS condition,
                   CASE h.health WHEN 'failing' THEN h.failing_since
                        WHEN 'broken' THEN h.broken_since
                        ELSE (SELECT MIN(l.started_at) FROM fetch_log l
                              WHERE l.source_id = h.source_id AND l.parse_status = 'degraded'
                                AND l.id > COALESCE((SELECT MAX(k.id) FROM fetch_log k
                                    WHERE k.source_id = h.source_id
                                      AND k.parse_status IN ('ok', 'broken')), 0))
                   END AS since,
                   CASE h.health WHEN 'failing' THEN h.last_error ELSE h.parse_error END AS error,
                   h.consecutive_failures
            FROM source_health h WHERE h.health IN ('failing', 'broken', 'degraded')
            ORDER BY h.source_id
            """,
        )

    # ------------------------------------------------------------------ digest and health

    def get_state(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM delivery_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_state(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO delivery_state (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def health_notices(self) -> dict[tuple[str, str], tuple[str | None, str]]:
        """(source_id, condition) -> (since, last_sent) of the problems already notified."""
        rows = self.conn.execute(
            "SELECT source_id, condition, since, last_sent FROM health_notices"
        )
        return {(r[0], r[1]): (r[2], r[3]) for r in rows}

    def record_health_notices(self, shown: Sequence[tuple[str, str, str | None]], now: str) -> None:
        """Remember that these (source_id, condition, since) problems were sent at ``now``."""
        self.conn.executemany(
            "INSERT INTO health_notices (source_id, condition, since, last_sent) "
            "VALUES (?,?,?,?) ON CONFLICT(source_id, condition) DO UPDATE SET "
            "since = excluded.since, last_sent = excluded.last_sent",
            [(s, c, since, now) for s, c, since in shown],
        )

    def prune_health_notices(self, current: Collection[tuple[str, str]]) -> None:
        """Forget notices of problems that are over (a new episode alerts again)."""
        for source_id, condition in list(self.health_notices()):
            if (source_id, condition) not in current:
                self.conn.execute(
                    "DELETE FROM health_notices WHERE source_id = ? AND condition = ?",
                    (source_id, condition),
                )

    # ------------------------------------------------------------------ [[channels]] rows

    def skip_extra_channels(self, keep: Collection[str], now: str) -> int:
        """Open rows of ``ch:`` channels not in ``keep`` (removed from the config): skipped."""
        return self._skip(keep, now, "channel no longer configured", extra=True)

    def extend_channel(
        self, channel: str, wanted: Callable[[str, str | None], bool], now: str
    ) -> int:
        """Give the ``ch:`` channel rows for the events recorded since it was last extended
        (``wanted(kind, delegation)`` filters them); the first time, for the events still open
        on the other channels (never the delivered past). Returns the rows added."""
        newest, ids = self._additions(channel, wanted)
        self.conn.executemany(
            "INSERT OR IGNORE INTO outbox (event_id, channel, created_at) VALUES (?, ?, ?)",
            [(i, channel, now) for i in ids],
        )
        self.set_state(f"channel-seen:{channel}", str(newest))
        return len(ids)

    def channel_additions(
        self, channel: str, wanted: Callable[[str, str | None], bool]
    ) -> list[int]:
        """The events ``extend_channel`` would give the channel now; reads only (dry run)."""
        return self._additions(channel, wanted)[1]

    def _additions(
        self, channel: str, wanted: Callable[[str, str | None], bool]
    ) -> tuple[int, list[int]]:
        newest = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        seen = self.get_state(f"channel-seen:{channel}")
        if seen is None:
            first = self.conn.execute(
                "SELECT MIN(event_id) FROM outbox WHERE status IN ('pending', 'sending') "
                f"AND channel NOT LIKE '{EXTRA}%'"
            ).fetchone()[0]
            seen = None if first is None else str(first - 1)
        if seen is None:
            return newest, []
        rows = self.conn.execute(
            "SELECT id, kind, delegation FROM events WHERE id > ? AND id <= ? ORDER BY id",
            (int(seen), newest),
        ).fetchall()
        return newest, [i for i, kind, delegation in rows if wanted(kind, delegation)]
