"""The SQLite store: the only module that writes SQL for checks, snapshots and events.

One check of one source is one transaction (``record_check``): the fetch-log row, the body and
snapshot rows and the events are written together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import zstandard
from sqlite_utils import Database

from pawatch.domain import HEALTH_KINDS, ChangeKind
from pawatch.storage.facts import (
    CheckContext,
    ParseInput,
    Policy,
    Version,
    apply_check,
    rebuild_facts,
)
from pawatch.storage.schema import migrations

_COMPRESSION = "zstd"


_local = threading.local()


def compress_body(body: bytes) -> bytes:
    """zstd level 3; safe to call from several threads (one compressor per thread)."""
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=3)
    return bytes(compressor.compress(body))


def format_time(moment: datetime) -> str:
    """ISO 8601 UTC with a ``Z``, to the second: sortable as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


class StorageError(Exception):
    """The database cannot be opened or used; the message names the file."""


@dataclass(frozen=True)
class SourceRow:
    id: str
    url: str
    parser: str
    delegation: str | None
    fingerprint: str | None = None  # what else the facts depend on (parser options, ...)


@dataclass(frozen=True)
class Validators:
    """A source's latest snapshot, its HTTP validators, and what was parsed from it."""

    snapshot_id: int
    sha256: str
    etag: str | None
    last_modified: str | None
    parsed_snapshot: int | None = None
    parser_version: int | None = None

    @property
    def parsed(self) -> bool:
        return self.parsed_snapshot == self.snapshot_id


@dataclass(frozen=True)
class CheckInput:
    """What one check of one source produced, as storage needs it (no scraper types)."""

    source_id: str
    url: str
    started_at: datetime
    duration: float
    attempts: int = 1
    http_status: int | None = None
    body: bytes | None = None  # None on failure and on 304
    not_modified: bool = False
    final_url: str | None = None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    error_kind: str | None = None
    error: str | None = None
    sha256: str | None = None  # of body, when the caller computed it already
    compressed: bytes | None = None  # compress_body(body), when the caller did it already

    @property
    def failed(self) -> bool:
        return self.error_kind is not None


@dataclass(frozen=True)
class CheckOutcome:
    source_id: str
    outcome: str  # new | changed | unchanged | not_modified | failed
    fetch_id: int
    snapshot_id: int | None
    event_ids: list[int] = field(default_factory=list)
    error_kind: str | None = None
    error: str | None = None
    parse_error: str | None = None  # set while the source's page cannot be read
    duration: float = 0.0  # seconds the fetch took

    @property
    def broken(self) -> bool:
        return self.outcome != "failed" and self.parse_error is not None


@dataclass(frozen=True)
class SourceStatus:
    id: str
    url: str
    parser: str
    last_check: str | None
    last_outcome: str | None
    last_success: str | None
    consecutive_failures: int
    last_error: str | None
    last_change: str | None
    snapshots: int
    parse_status: str | None  # ok | broken | None (never parsed)
    parse_error: str | None
    final_url: str | None = None  # where the last check ended, when redirected elsewhere


@dataclass(frozen=True)
class Snapshot:
    id: int
    source_id: str
    url: str
    sha256: str
    content_type: str | None
    first_seen: str
    last_seen: str
    body: bytes


class Store:
    """A pawatch database. Open with ``Store.open(path)``; close with ``close()`` or ``with``."""

    def __init__(self, db: Database, path: str) -> None:
        self.db = db
        self.path = path
        self._decompressor = zstandard.ZstdDecompressor()

    @classmethod
    def open(cls, path: str | Path, *, busy_timeout: float = 30.0) -> Store:
        """Open (creating if needed) and migrate the database at ``path``."""
        path = str(path)
        if path != ":memory:" and not Path(path).parent.exists():
            raise StorageError(f"{path}: the folder {str(Path(path).parent)!r} does not exist")
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            db = Database(conn)
            store = cls(db, path)
            with db.atomic():
                pending = migrations.pending(db)
            if pending:
                migrations.apply(db)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{path}: cannot open the database: {exc}") from None
        return store

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction that takes SQLite's write lock at BEGIN (``BEGIN IMMEDIATE``),
        so a concurrent writer waits the busy timeout instead of failing mid-check."""
        conn = self.db.conn
        if conn.in_transaction:  # nested: a savepoint inside the caller's transaction
            with self.db.atomic():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return len(migrations.applied(self.db))

    # ------------------------------------------------------------------ sources

    def sync_sources(self, sources: Iterable[SourceRow], now: datetime) -> dict[str, str]:
        """Insert new sources and update known ones (one transaction).

        Returns the known sources whose configuration changed: ``{id: "url"}`` when the URL
        changed (a different page), ``{id: "config"}`` when only what the facts depend on
        changed (parser, delegation, options).
        """
        stamp = format_time(now)
        rows = list(sources)
        with self.transaction():
            known = {
                r[0]: (r[1], r[2])
                for r in self.db.conn.execute("SELECT id, url, fingerprint FROM sources")
            }
            self.db.conn.executemany(
                """
                INSERT INTO sources (id, url, parser, delegation, fingerprint, first_seen,
                                     updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET
                    url = excluded.url, parser = excluded.parser,
                    delegation = excluded.delegation, fingerprint = excluded.fingerprint,
                    updated_at = excluded.updated_at
                WHERE sources.url IS NOT excluded.url OR sources.parser IS NOT excluded.parser
                   OR sources.delegation IS NOT excluded.delegation
                   OR sources.fingerprint IS NOT excluded.fingerprint
                """,
                [(s.id, s.url, s.parser, s.delegation, s.fingerprint, stamp, stamp) for s in rows],
            )
        changed: dict[str, str] = {}
        for row in rows:
            if row.id not in known:
                continue
            url, fingerprint = known[row.id]
            if url != row.url:
                changed[row.id] = "url"
            elif fingerprint is not None and fingerprint != row.fingerprint:
                changed[row.id] = "config"
        return changed

    def restart_baseline(self, source_id: str, now: datetime) -> None:
        """The source now watches a different page: its open facts end here, silently, and
        its next good parse is a new baseline (no events)."""
        stamp = format_time(now)
        with self.transaction():
            self.db.conn.execute(
                "UPDATE facts SET ended_at = ? WHERE source_id = ? AND ended_at IS NULL",
                (stamp, source_id),
            )
            self.db.conn.execute(
                "UPDATE source_state SET baseline_at = NULL, parsed_snapshot = NULL, "
                "parse_status = NULL, parse_error = NULL, broken_since = NULL, "
                "candidate = NULL, candidate_count = 0, candidate_since = NULL, "
                "candidate_snapshot = NULL WHERE source_id = ?",
                (source_id,),
            )

    def latest_validators(self) -> dict[str, Validators]:
        """For every source, its latest snapshot's id, hash and HTTP validators."""
        rows = self.db.conn.execute(
            """
            SELECT s.source_id, s.id, s.sha256, s.etag, s.last_modified, st.parsed_snapshot,
                   st.parser_version
            FROM snapshots s
            JOIN (SELECT source_id, MAX(id) AS id FROM snapshots GROUP BY source_id) latest
              ON latest.id = s.id
            LEFT JOIN source_state st ON st.source_id = s.source_id
            """
        )
        return {r[0]: Validators(*r[1:]) for r in rows}

    # ------------------------------------------------------------------ checks

    def record_check(
        self, check: CheckInput, parse: ParseInput | None = None, policy: Policy | None = None
    ) -> CheckOutcome:
        """Write one check atomically: fetch-log row, body and snapshot, facts and events.

        ``parse`` is what the parser read from this check's body; ``None`` when the body is
        the one parsed last time (unchanged or 304) or the fetch failed.
        """
        with self.transaction():
            return self._record_one(check, parse, policy)

    def record_checks(
        self, checks: Sequence[tuple[CheckInput, ParseInput | None, Policy | None]]
    ) -> list[CheckOutcome]:
        """Write several checks in one transaction (all or none): what ``record_check`` does
        for each, in order, with one commit. For runs of checks that change nothing (304s,
        unchanged bodies), where a commit per check is most of the cost."""
        with self.transaction():
            return [self._record_one(check, parse, policy) for check, parse, policy in checks]

    def _record_one(
        self, check: CheckInput, parse: ParseInput | None, policy: Policy | None
    ) -> CheckOutcome:
        previous = self._latest_validators(check.source_id)
        outcome = self._record(check, previous)
        ctx = CheckContext(
            source_id=check.source_id,
            url=check.final_url or check.url,
            stamp=format_time(check.started_at + timedelta(seconds=check.duration)),
            snapshot_id=outcome.snapshot_id,
            failed=outcome.outcome == "failed",
            error=outcome.error,
            text_diff=parse.text_diff if parse is not None else None,
        )
        apply_check(self.db.conn, ctx, parse, policy or Policy(), self._insert_event)
        moved = self._moved(check, outcome.fetch_id, ctx.stamp)
        if moved is not None:
            ctx.event_ids.append(moved)
        state = self.db.conn.execute(
            "SELECT parse_status, parse_error FROM source_state WHERE source_id = ?",
            (check.source_id,),
        ).fetchone()
        parse_error = None
        if state is not None and state[0] == "broken":
            parse_error = state[1] or "the page cannot be read"
        return replace(outcome, event_ids=ctx.event_ids, parse_error=parse_error)

    def _moved(self, check: CheckInput, fetch_id: int, stamp: str) -> int | None:
        """A `source_moved` event when this check was redirected to another host than the
        one it ended on last time (its URL's, if never redirected); else None."""
        final = check.final_url
        if check.failed or not final or _host(final) == _host(check.url):
            return None
        row = self.db.conn.execute(
            "SELECT final_url FROM fetch_log WHERE source_id = ? AND id < ? "
            "AND outcome != 'failed' ORDER BY id DESC LIMIT 1",
            (check.source_id, fetch_id),
        ).fetchone()
        if row is not None and _host(row[0] or check.url) == _host(final):
            return None  # reported when it moved
        return self._insert_event(
            kind=ChangeKind.SOURCE_MOVED.value,
            detected_at=stamp,
            source_id=check.source_id,
            old=check.url,
            new=final,
            url=final,
            details={"reason": f"redirected to another host: {_host(final)}"},
        )

    def rebuild_facts(
        self,
        source_id: str,
        versions: Sequence[Version],
        parser_version: int,
        policy: Policy | None = None,
    ) -> int:
        """Re-derive a source's facts from re-parsed snapshots (one transaction, no events)."""
        with self.transaction():
            return rebuild_facts(self.db.conn, source_id, versions, parser_version, policy)

    def snapshot_versions(self, source_id: str) -> list[tuple[int, str, str, int]]:
        """(id, first_seen, last_seen, seen_count) of every snapshot of a source, oldest
        first; seen_count is how many consecutive checks saw that version."""
        rows = self.db.conn.execute(
            "SELECT id, first_seen, last_seen, seen_count FROM snapshots WHERE source_id = ? "
            "ORDER BY id",
            (source_id,),
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def _latest_validators(self, source_id: str) -> Validators | None:
        row = self.db.conn.execute(
            "SELECT id, sha256, etag, last_modified FROM snapshots WHERE source_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (source_id,),
        ).fetchone()
        return Validators(*row) if row else None

    def _record(self, check: CheckInput, previous: Validators | None) -> CheckOutcome:
        conn = self.db.conn
        finished = check.started_at + timedelta(seconds=check.duration)
        stamp = format_time(finished)
        snapshot_id: int | None = None
        if check.failed:
            outcome = "failed"
        elif check.not_modified:
            if previous is None:
                # A 304 with nothing stored to compare with cannot happen unless the database
                # was reset under us; record it as a failure rather than invent a snapshot.
                outcome = "failed"
                check = _with_error(check, "http_status", "304 Not Modified but no stored copy")
            else:
                outcome = "not_modified"
                snapshot_id = previous.snapshot_id
                conn.execute(
                    "UPDATE snapshots SET last_seen = ?, seen_count = seen_count + 1 WHERE id = ?",
                    (stamp, snapshot_id),
                )
        else:
            body = check.body or b""
            digest = check.sha256 or hashlib.sha256(body).hexdigest()
            if previous is not None and previous.sha256 == digest:
                outcome = "unchanged"
                snapshot_id = previous.snapshot_id
                conn.execute(
                    "UPDATE snapshots SET last_seen = ?, seen_count = seen_count + 1, "
                    "etag = ?, last_modified = ? WHERE id = ?",
                    (stamp, check.etag, check.last_modified, snapshot_id),
                )
            else:
                outcome = "new" if previous is None else "changed"
                conn.execute(
                    "INSERT OR IGNORE INTO bodies (sha256, size, compression, data) "
                    "VALUES (?, ?, ?, ?)",
                    (
                        digest,
                        len(body),
                        _COMPRESSION,
                        check.compressed if check.compressed is not None else compress_body(body),
                    ),
                )
                cur = conn.execute(
                    "INSERT INTO snapshots (source_id, sha256, url, content_type, etag, "
                    "last_modified, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        check.source_id,
                        digest,
                        check.final_url or check.url,
                        check.content_type,
                        check.etag,
                        check.last_modified,
                        stamp,
                        stamp,
                    ),
                )
                snapshot_id = cur.lastrowid
        cur = conn.execute(
            "INSERT INTO fetch_log (source_id, url, started_at, duration_ms, outcome, "
            "http_status, error_kind, error, attempts, etag, last_modified, snapshot_id, "
            "final_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                check.source_id,
                check.url,
                format_time(check.started_at),
                round(check.duration * 1000),
                outcome,
                check.http_status,
                check.error_kind,
                check.error,
                check.attempts,
                check.etag,
                check.last_modified,
                snapshot_id,
                check.final_url if check.final_url != check.url else None,
            ),
        )
        assert cur.lastrowid is not None
        return CheckOutcome(
            source_id=check.source_id,
            outcome=outcome,
            fetch_id=cur.lastrowid,
            snapshot_id=snapshot_id,
            error_kind=check.error_kind,
            error=check.error,
            duration=check.duration,
        )

    def _insert_event(
        self,
        *,
        kind: str,
        detected_at: str,
        source_id: str | None,
        delegation: str | None = None,
        attribute: str | None = None,
        old: str | None = None,
        new: str | None = None,
        url: str | None = None,
        before_snapshot: int | None = None,
        after_snapshot: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        cur = self.db.conn.execute(
            "INSERT INTO events (kind, detected_at, source_id, delegation, attribute, old, new, "
            "url, before_snapshot, after_snapshot, details) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                kind,
                detected_at,
                source_id,
                delegation,
                attribute,
                old,
                new,
                url,
                before_snapshot,
                after_snapshot,
                json.dumps(details, ensure_ascii=False, sort_keys=True) if details else None,
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    # ------------------------------------------------------------------ reading

    def snapshot(self, snapshot_id: int) -> Snapshot:
        row = self.db.conn.execute(
            "SELECT s.id, s.source_id, s.url, s.sha256, s.content_type, s.first_seen, "
            "s.last_seen, b.compression, b.data FROM snapshots s "
            "JOIN bodies b ON b.sha256 = s.sha256 WHERE s.id = ?",
            (snapshot_id,),
        ).fetchone()
        if row is None:
            raise KeyError(snapshot_id)
        return Snapshot(
            id=row[0],
            source_id=row[1],
            url=row[2],
            sha256=row[3],
            content_type=row[4],
            first_seen=row[5],
            last_seen=row[6],
            body=self._decompress(row[7], row[8]),
        )

    def _decompress(self, compression: str, data: bytes) -> bytes:
        if compression != _COMPRESSION:
            raise StorageError(f"{self.path}: unknown body compression {compression!r}")
        return self._decompressor.decompress(data)

    def statuses(self) -> list[SourceStatus]:
        """Health of every source known to the database, from the fetch log and events.

        ``last_change`` is when the source last reported a change (an event other than a
        health event); a new page body whose facts stayed the same is not a change.
        """
        rows = self.db.conn.execute(
            """
            SELECT src.id, src.url, src.parser,
              (SELECT started_at FROM fetch_log WHERE source_id = src.id
                 ORDER BY id DESC LIMIT 1),
              (SELECT outcome FROM fetch_log WHERE source_id = src.id ORDER BY id DESC LIMIT 1),
              (SELECT started_at FROM fetch_log WHERE source_id = src.id
                 AND outcome != 'failed' ORDER BY id DESC LIMIT 1),
              COALESCE(st.consecutive_failures, 0),
              (SELECT error FROM fetch_log WHERE source_id = src.id AND outcome = 'failed'
                 ORDER BY id DESC LIMIT 1),
              (SELECT detected_at FROM events WHERE source_id = src.id AND kind NOT IN
                 (SELECT value FROM json_each(?)) ORDER BY id DESC LIMIT 1),
              (SELECT COUNT(*) FROM snapshots WHERE source_id = src.id),
              st.parse_status, st.parse_error,
              (SELECT final_url FROM fetch_log WHERE source_id = src.id
                 AND outcome != 'failed' ORDER BY id DESC LIMIT 1)
            FROM sources src LEFT JOIN source_state st ON st.source_id = src.id
            ORDER BY src.id
            """,
            (json.dumps(HEALTH_KINDS),),
        ).fetchall()
        return [SourceStatus(*r) for r in rows]

    def events(self, since: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM events"
        params: list[Any] = []
        if since is not None:
            sql += " WHERE detected_at >= ?"
            params.append(since)
        return [dict(row) for row in self.db.query(sql + " ORDER BY id", params)]


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _with_error(check: CheckInput, kind: str, message: str) -> CheckInput:
    return replace(check, error_kind=kind, error=message, not_modified=False)
