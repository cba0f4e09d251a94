"""The SQLite store: the only module that writes SQL for checks, snapshots and events.

One check of one source is one transaction (``record_check``): the fetch-log row, the body and
snapshot rows and the events are written together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import zstandard
from sqlite_utils import Database

from pawatch.display import redact_secrets, redact_url
from pawatch.domain import HEALTH_KINDS, ChangeKind, Fact
from pawatch.storage import queries
from pawatch.storage.bodytext import (
    decompress_body,
    line_ids_json,
    readable_text,
    split_lines,
    store_lines,
)
from pawatch.storage.changes import Identity
from pawatch.storage.facts import (
    End,
    FactOp,
    NewsMemory,
    NewsRow,
    Open,
    OpenFact,
    ParseInput,
    Policy,
    Sighting,
    SourceState,
    Touch,
    Tracked,
    Version,
    reparse_sightings,
    track,
)
from pawatch.storage.outbox import Outbox
from pawatch.storage.queries import (
    agreed_value,
    awaited_sources,
    compared_through,
    competing_text,
    disagreements_now,
)
from pawatch.storage.schema import known_names, migrations
from pawatch.times import format_time as format_time  # re-exported: pawatch.storage.format_time
from pawatch.times import parse_time as parse_time  # re-exported: pawatch.storage.parse_time

_COMPRESSION = "zstd"
_INDEX_BATCH = 5000  # new text lines indexed together (Store.index_texts)
_LINE_CACHE = 50_000  # distinct text lines whose ids a Store remembers (then it starts over)
# ... and at most this many characters of them: pages whose lines seldom repeat (1000 news
# pages: 104,000 distinct lines, 36 M characters) kept ~40 MB in memory at 50,000 lines
_LINE_CACHE_CHARS = 4_000_000
# Every stored time of a check (``Store.backdate`` moves them back together).
_TIME_COLUMNS = (
    "first_seen", "last_seen", "started_at", "detected_at", "ended_at", "baseline_at",
    "updated_at", "created_at", "failing_since", "broken_since", "candidate_since", "since",
)  # fmt: skip
_KNOWN: list[str] | None = None  # the migration names this version knows


_local = threading.local()


def compress_body(body: bytes) -> bytes:
    """zstd level 3; safe to call from several threads (one compressor per thread)."""
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=3)
    return bytes(compressor.compress(body))


def _size_and_data(check: CheckInput) -> tuple[int, str, bytes]:
    """A new body's row values (size, compression, data) from what the check carries."""
    if check.body is not None:
        data = check.compressed if check.compressed is not None else compress_body(check.body)
        return len(check.body), _COMPRESSION, data
    if check.compressed is None or check.size is None:
        raise StorageError(f"{check.source_id}: a new body without its compressed copy")
    return check.size, _COMPRESSION, check.compressed


class StorageError(Exception):
    """The database cannot be opened or used; the message names the file."""


class SchemaTooNew(StorageError):
    """The database has migrations this version does not know: a newer pawatch wrote it."""


class SchemaBusy(StorageError):
    """The schema needs setting up, and the writer lock stayed held for the whole wait."""


class WriterLock(Protocol):
    """The single-writer lock (``pawatch.lock.FileLock`` fits): taken to set up the schema."""

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...


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
    text: str | None = None  # readable_text(body), when the caller computed it already
    # len(body) when the body itself is left out (a fetch process sends sha256 and the
    # compressed copy, or only sha256 when the body is the stored one)
    size: int | None = None

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
    degraded: str | None = None  # set while a part of the page cannot be read (facts held)

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
    parse_status: str | None  # ok | degraded | broken | None (never parsed)
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
        self._writer: ThreadPoolExecutor | None = None
        # text_lines ids by line, of the lines this Store read or wrote; _new_lines: the ones
        # the open transaction added (forgotten if it rolls back: the id may go to another line)
        self._line_ids: dict[str, int] = {}
        self._line_chars = 0  # the characters of the lines in _line_ids
        self._new_lines: list[str] = []
        self._unindexed = 0  # text lines stored since the last index_texts (a hint only)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        busy_timeout: float = 30.0,
        lock: WriterLock | None = None,
        lock_timeout: float = 300.0,
    ) -> Store:
        """Open (creating if needed) and migrate the database at ``path``.

        A database with migrations this version does not know is refused (``SchemaTooNew``)
        before anything is written. Pending migrations are applied in one ``BEGIN IMMEDIATE``
        transaction while holding ``lock`` (the single-writer lock; the caller must not hold
        it already): a process that finds the schema incomplete waits until another one has
        finished setting it up or the lock is free, up to ``lock_timeout`` (``SchemaBusy``).
        """
        path = str(path)
        if path != ":memory:" and not Path(path).parent.exists():
            raise StorageError(f"{path}: the folder {str(Path(path).parent)!r} does not exist")
        try:
            # usable from the writer thread (``writer``): one thread at a time uses it
            conn = sqlite3.connect(
                path, isolation_level=None, timeout=busy_timeout, check_same_thread=False
            )
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{path}: cannot open the database: {exc}") from None
        # no sqlite-utils plugins: pawatch registers no SQL functions through them, and
        # looking for them scans every installed package (~15 ms per start)
        store = cls(Database(conn, execute_plugins=False), path)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            store._set_up(lock, lock_timeout)
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StorageError(f"{path}: cannot open the database: {exc}") from None
        except BaseException:
            conn.close()
            raise
        return store

    def _set_up(self, lock: WriterLock | None, lock_timeout: float) -> None:
        deadline = time.monotonic() + max(lock_timeout, 0.0)
        while self._needs_setup():
            if lock is None or lock.try_acquire():
                try:
                    if self.path != ":memory:":
                        self.db.conn.execute("PRAGMA journal_mode = WAL")
                    with self.transaction():
                        if self._needs_setup(wal=False):
                            migrations.apply(self.db)
                finally:
                    if lock is not None:
                        lock.release()
                return
            if time.monotonic() >= deadline:
                raise SchemaBusy(
                    f"{self.path}: the schema needs setting up and another process held the "
                    f"database lock for {lock_timeout:g} s"
                )
            time.sleep(0.05)

    def _needs_setup(self, *, wal: bool = True) -> bool:
        """True while migrations are pending (or the file is not in WAL mode yet); raises
        ``SchemaTooNew`` for a database with migrations this version does not know."""
        global _KNOWN
        if _KNOWN is None:  # once per process, after every migration module is loaded
            _KNOWN = known_names()
        known = _KNOWN
        applied = [m.name for m in migrations.applied(self.db)]
        unknown = [name for name in applied if name not in known]
        if unknown:
            raise SchemaTooNew(
                f"{self.path} was written by a newer pawatch (unknown schema migration "
                f"{', '.join(unknown)}); use that version or a copy of the database"
            )
        if len(applied) < len(known):
            return True
        if wal and self.path != ":memory:":
            mode = self.db.conn.execute("PRAGMA journal_mode").fetchone()[0]
            return str(mode).lower() != "wal"
        return False

    def writer(self) -> ThreadPoolExecutor:
        """The one thread that runs this store's work while an event loop goes on (the
        pipeline records checks there: SQLite releases the GIL while it writes and indexes,
        so fetching and storing overlap). One thread per store: its transactions never
        interleave, whichever coroutine submits them."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="pawatch-writer")
        return self._writer

    def close(self) -> None:
        if self._writer is not None:  # what was submitted is written (or not) whole first
            self._writer.shutdown(wait=True)
            self._writer = None
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
            try:
                with self.db.atomic():
                    yield
            except BaseException:
                self._forget_new_lines()  # some may have been rolled back
                raise
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._forget_new_lines()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            self._forget_new_lines()
            raise
        self._new_lines.clear()
        if len(self._line_ids) > _LINE_CACHE or self._line_chars > _LINE_CACHE_CHARS:
            self._line_ids.clear()
            self._line_chars = 0

    def _forget_new_lines(self) -> None:
        for line in self._new_lines:
            if self._line_ids.pop(line, None) is not None:
                self._line_chars -= len(line)
        self._new_lines.clear()

    def index_texts(self) -> int:
        """Add the text lines stored since the last call to the full-text index
        (``text_lines_fts``), in one transaction; how many. Called at the end of every run
        (and so of every daemon batch); lines a crashed run stored are indexed by the next."""
        with self.transaction():
            return self._index_texts()

    def _index_texts(self) -> int:
        conn = self.db.conn
        row = conn.execute("SELECT value FROM meta WHERE key = 'text_lines_indexed'").fetchone()
        done = int(row[0]) if row is not None else 0
        (top,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM text_lines").fetchone()
        self._unindexed = 0
        if top <= done:
            return 0
        added = conn.execute(
            "INSERT INTO text_lines_fts (rowid, text) SELECT id, text FROM text_lines WHERE id > ?",
            (done,),
        ).rowcount
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('text_lines_indexed', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(top),),
        )
        return int(added)

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
        rows = [replace(s, url=redact_url(s.url)) for s in sources]  # no password in the db
        with self.transaction():
            known = {  # redacted: a row stored with a password (older pawatch) is no new URL
                r[0]: (redact_url(r[1]), r[2])
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
        """One check inside the caller's transaction (the URLs and errors without passwords)."""
        check = _without_passwords(check)
        previous = self._latest_validators(check.source_id)
        stamp = format_time(check.started_at + timedelta(seconds=check.duration))
        outcome = self._record(check, previous, stamp)
        failed = outcome.outcome == "failed"
        state = self._source_state(check.source_id, facts=parse is not None, last_error=not failed)
        sighting = Sighting(
            stamp=stamp,
            snapshot_id=outcome.snapshot_id,
            url=check.final_url or check.url,
            failed=failed,
            error=outcome.error,
            parse=parse,
        )
        tracked = track(state, sighting, policy or Policy())
        event_ids = self._write_tracked(check.source_id, outcome.fetch_id, sighting, tracked, state)
        moved = self._moved(check, outcome.fetch_id, stamp)
        if moved is not None:
            event_ids.append(moved)
        after = tracked.state
        parse_error = degraded = None
        if after.parse_status == "broken":
            parse_error = after.parse_error or "the page cannot be read"
        elif after.parse_status == "degraded" and outcome.outcome != "failed":
            degraded = after.parse_error or "a part of the page cannot be read"
        return replace(outcome, event_ids=event_ids, parse_error=parse_error, degraded=degraded)

    def _moved(self, check: CheckInput, fetch_id: int, stamp: str) -> int | None:
        """A `source_moved` event when this check was redirected to another host than the
        one it ended on last time (its URL's, if never redirected); else None."""
        final = check.final_url
        if check.failed or not final or final == check.url or _host(final) == _host(check.url):
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
        """Re-derive a source's facts from re-parsed snapshots (one transaction, no events).

        Used when a parser's code changed what it extracts: the history is re-read as the new
        parser reads it, with the live rule (``storage.facts.track``, folded from a blank state
        over the versions, oldest first), so the next check compares like with like. A
        trailing change not yet confirmed is left awaiting confirmation. Returns the facts
        written.
        """
        policy = policy or Policy()
        with self.transaction():
            old = self._source_state(source_id, facts=False, last_error=False)
            self.db.conn.execute("DELETE FROM facts WHERE source_id = ?", (source_id,))
            state, written = SourceState(), 0
            for sighting in reparse_sightings(versions):
                tracked = track(state, sighting, policy)
                state = self._write_facts(source_id, tracked.ops, tracked.state)
                written += sum(isinstance(op, Open) for op in tracked.ops)
            broken = state.parse_status == "broken"
            state = replace(
                state,
                parser_version=parser_version,
                baseline_at=old.baseline_at or state.baseline_at,
                broken_since=(old.broken_since or state.broken_since) if broken else None,
                consecutive_failures=old.consecutive_failures,
                failing_since=old.failing_since,
                failing_alerted=old.failing_alerted,
            )
            self._update_state(source_id, state)
            return written

    # ------------------------------------------------------------------ facts

    def _source_state(self, source_id: str, *, facts: bool, last_error: bool) -> SourceState:
        """A source's ``SourceState``; its open facts are read when ``facts`` is true or a
        change awaits confirmation (otherwise ``open`` is None: not needed)."""
        conn = self.db.conn
        cur = conn.execute("SELECT * FROM source_state WHERE source_id = ?", (source_id,))
        found = cur.fetchone()
        if found is None:  # its first check: the row starts with the columns' defaults
            conn.execute("INSERT INTO source_state (source_id) VALUES (?)", (source_id,))
            cur = conn.execute("SELECT * FROM source_state WHERE source_id = ?", (source_id,))
            found = cur.fetchone()
        names = [d[0] for d in cur.description]
        row = dict(zip(names, found, strict=True))
        row.pop("source_id")
        row["failing_alerted"] = bool(row["failing_alerted"])
        if row["failing_alerted"] and last_error:
            last = conn.execute(
                "SELECT error FROM fetch_log WHERE source_id = ? AND outcome = 'failed' "
                "ORDER BY id DESC LIMIT 1",
                (source_id,),
            ).fetchone()
            row["last_error"] = last[0] if last else None
        open_facts = None
        if facts or row["candidate"] is not None:
            open_facts = tuple(
                OpenFact(r[0], Fact(r[1], r[2], r[3], r[4]), r[5])
                for r in conn.execute(
                    "SELECT id, subject, attribute, key, value, last_snapshot FROM facts "
                    "WHERE source_id = ? AND ended_at IS NULL ORDER BY id",
                    (source_id,),
                )
            )
        return SourceState(open=open_facts, news=_StoredNews(conn, source_id), **row)

    def _update_state(self, source_id: str, state: SourceState) -> None:
        columns = state.columns()
        assigns = ", ".join(f"{k} = ?" for k in columns)
        self.db.conn.execute(
            f"UPDATE source_state SET {assigns} WHERE source_id = ?",
            (*columns.values(), source_id),
        )

    def _write_tracked(
        self,
        source_id: str,
        fetch_id: int,
        sighting: Sighting,
        tracked: Tracked,
        before: SourceState,
    ) -> list[int]:
        """Write what ``track`` returned for one check (logged as ``fetch_id``); returns the
        ids of its events."""
        conn = self.db.conn
        after = tracked.state
        if sighting.parse is not None and not sighting.failed:
            conn.execute(
                "UPDATE fetch_log SET parse_status = ?, parse_error = ? WHERE id = ?",
                (after.parse_status, after.parse_error, fetch_id),
            )
        if tracked.news:
            _store_news(conn, source_id, sighting, tracked.news)
        self._write_facts(source_id, tracked.ops, after, ids=False)
        if after.columns() != before.columns():
            self._update_state(source_id, after)
        return [
            self._insert_event(
                kind=e.kind,
                detected_at=sighting.stamp,
                source_id=source_id,
                delegation=e.delegation,
                attribute=e.attribute,
                old=e.old,
                new=e.new,
                url=e.url,
                before_snapshot=e.before_snapshot,
                after_snapshot=e.after_snapshot,
                details=e.details,
                identity=e.identity,
            )
            for e in tracked.events
        ]

    def _write_facts(
        self, source_id: str, ops: Sequence[FactOp], state: SourceState, *, ids: bool = True
    ) -> SourceState:
        """Write fact operations in order; returns ``state`` with the row ids of the facts
        opened (when ``ids``: a fold that ends them later needs them)."""
        conn = self.db.conn
        opened: dict[Fact, int] = {}
        ends: list[tuple[str, int | None, int]] = []
        opens: list[tuple[Any, ...]] = []

        def flush() -> None:
            if ends:
                conn.executemany(
                    "UPDATE facts SET ended_at = ?, end_snapshot = ? WHERE id = ?", ends
                )
                ends.clear()
            if not opens:
                return
            sql = (
                "INSERT INTO facts (source_id, subject, attribute, key, value, first_seen, "
                "last_seen, first_snapshot, last_snapshot, parser_version) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)"
            )
            if ids:
                for row in opens:
                    cur = conn.execute(sql, row)
                    assert cur.lastrowid is not None
                    opened[Fact(*row[1:5])] = cur.lastrowid
            else:
                conn.executemany(sql, opens)
            opens.clear()

        for op in ops:
            if isinstance(op, End):
                fact_id = op.fact.id if op.fact.id is not None else opened[op.fact.fact]
                ends.append((op.at, op.snapshot, fact_id))
            elif isinstance(op, Open):
                f = op.fact
                opens.append(
                    (
                        source_id,
                        f.subject,
                        f.attribute,
                        f.key,
                        f.value,
                        op.first_seen,
                        op.last_seen,
                        op.first_snapshot,
                        op.last_snapshot,
                        op.parser_version,
                    )
                )
            elif isinstance(op, Touch):
                flush()
                conn.execute(
                    "UPDATE facts SET last_seen = ?, last_snapshot = ? "
                    "WHERE source_id = ? AND ended_at IS NULL",
                    (op.stamp, op.snapshot, source_id),
                )
        flush()
        if not opened or state.open is None:
            return state
        return replace(
            state,
            open=tuple(replace(o, id=opened[o.fact]) if o.id is None else o for o in state.open),
        )

    def reconcile(self, now: datetime) -> list[int]:
        """Compare the sources of each delegation (one transaction, after a run's checks).

        Two sources whose current values for the same delegation attribute differ (the
        ``delegation_now`` view's ``disagree``), or a page whose stated seat total differs
        from the number of members it lists (``stated_vs_listed``), open a disagreement. It
        is a finding (one ``sources_disagree`` event; ``sources_agree`` when it ends) only
        once every source involved has a good check after it began: after the comparison
        before the one that first saw it. A run that checked all of them (``pawatch run``)
        confirms what it finds at once; in the daemon, where sources are checked on their
        own schedules, a change that has reached one source and not yet been looked for on
        the other is pending (``pending_disagreements``: no event, no alert) and ends
        silently if the other source shows it too. A disagreement whose competing values
        change while it lasts is updated silently. Returns the ids of the events raised.
        """
        stamp = format_time(now)
        with self.transaction():
            conn = self.db.conn
            found = disagreements_now(conn)
            mark = compared_through(conn)  # the last fetch the previous comparison saw
            latest = conn.execute("SELECT COALESCE(MAX(id), 0) FROM fetch_log").fetchone()[0]
            open_rows = {
                (r[1], r[2], r[3]): _OpenDisagreement(r[0], r[4], r[5], r[6])
                for r in conn.execute(
                    "SELECT id, delegation, attribute, source_id, competing, event_id, since "
                    "FROM disagreement_log WHERE ended_at IS NULL"
                )
            }
            for key in sorted(found.keys() - open_rows.keys(), key=_sort_key):
                delegation, attribute, source_id = key
                values = _competing_json(found[key])
                cur = conn.execute(
                    "INSERT INTO disagreement_log (delegation, attribute, source_id, competing, "
                    "since, checked_after) VALUES (?,?,?,?,?,?)",
                    (delegation, attribute, source_id, values, stamp, mark),
                )
                assert cur.lastrowid is not None
                open_rows[key] = _OpenDisagreement(cur.lastrowid, values, None, stamp)
            for key in found.keys() & open_rows.keys():
                row, values = open_rows[key], _competing_json(found[key])
                if values != row.competing:
                    conn.execute(
                        "UPDATE disagreement_log SET competing = ? WHERE id = ?", (values, row.id)
                    )
            awaiting = awaited_sources(conn)  # pending id -> sources not checked since
            ids: list[int] = []
            for key in sorted(found.keys() & open_rows.keys(), key=_sort_key):
                row = open_rows[key]
                if row.event_id is not None or awaiting.get(row.id, ["?"]):
                    continue  # a finding already, or a source involved not checked since
                delegation, attribute, source_id = key
                competing = found[key]
                event_id = self._insert_event(
                    kind="sources_disagree",
                    detected_at=stamp,
                    source_id=source_id,
                    delegation=delegation,
                    attribute=attribute,
                    new=competing_text(competing),
                    details={
                        "subject": f"delegation:{delegation}",
                        "kind": "stated_vs_listed" if source_id else "sources",
                        "competing": [{"source": s, "value": v} for s, v in competing],
                        "since": row.since,
                    },
                )
                ids.append(event_id)
                conn.execute(
                    "UPDATE disagreement_log SET event_id = ? WHERE id = ?", (event_id, row.id)
                )
            for key in sorted(open_rows.keys() - found.keys(), key=_sort_key):
                delegation, attribute, source_id = key
                row = open_rows[key]
                if row.event_id is None:  # pending: the sources converged before it was one
                    conn.execute(
                        "UPDATE disagreement_log SET ended_at = ? WHERE id = ?", (stamp, row.id)
                    )
                    continue
                was = [(c["source"], c["value"]) for c in json.loads(row.competing)]
                event_id = self._insert_event(
                    kind="sources_agree",
                    detected_at=stamp,
                    source_id=source_id,
                    delegation=delegation,
                    attribute=attribute,
                    old=competing_text(was),
                    new=agreed_value(conn, delegation, attribute, source_id),
                    details={
                        "subject": f"delegation:{delegation}",
                        "kind": "stated_vs_listed" if source_id else "sources",
                    },
                )
                ids.append(event_id)
                conn.execute(
                    "UPDATE disagreement_log SET ended_at = ?, end_event = ? WHERE id = ?",
                    (stamp, event_id, row.id),
                )
            conn.execute("UPDATE disagreement_state SET compared_through = ?", (latest,))
            return ids

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

    def _record(self, check: CheckInput, previous: Validators | None, stamp: str) -> CheckOutcome:
        conn = self.db.conn
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
            if check.body is None and check.sha256 is None:
                raise StorageError(f"{check.source_id}: a good check without its body")
            digest = check.sha256 or hashlib.sha256(check.body or b"").hexdigest()
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
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO bodies (sha256, size, compression, data) "
                    "VALUES (?, ?, ?, ?)",
                    (digest, *_size_and_data(check)),
                ).rowcount
                if inserted:  # a new distinct body: its readable text, for SQL and search
                    text = check.text
                    if text is None:
                        text = readable_text(check.body or b"", check.content_type)
                    self._store_text(digest, text)
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

    def _store_text(self, sha256: str, text: str) -> None:
        """A new body's readable text, by line (view ``snapshot_text``): the lines this Store
        has seen are known by text; the others are looked up or added by ``store_lines``
        (one query by hash for the whole body); new lines are indexed in batches."""
        lines = split_lines(text)
        known = self._line_ids
        ids = cast(list[int], list(map(known.get, lines)))  # None for lines not seen yet
        if None in ids:
            missing = dict.fromkeys(line for line, i in zip(lines, ids, strict=True) if i is None)
            found, added = store_lines(self.db.conn, missing)
            known.update(found)
            self._line_chars += sum(map(len, found))
            self._new_lines.extend(found)
            ids = list(map(known.__getitem__, lines))
            self._unindexed += added
        self.db.conn.execute(
            "INSERT OR IGNORE INTO body_text (sha256, line_ids) VALUES (?, ?)",
            (sha256, line_ids_json(ids)),
        )
        if self._unindexed >= _INDEX_BATCH:  # the run's end indexes the rest
            self._index_texts()

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
        identity: Identity | None = None,
    ) -> int:
        change_id = None
        if identity is not None and delegation is not None and attribute is not None:
            change_id = self._change_for(
                kind, delegation, attribute, identity, source_id, detected_at, old, new
            )
        cur = self.db.conn.execute(
            "INSERT INTO events (kind, detected_at, source_id, delegation, attribute, old, new, "
            "url, before_snapshot, after_snapshot, details, change_id) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
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
                change_id,
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _change_for(
        self,
        kind: str,
        delegation: str,
        attribute: str,
        identity: Identity,
        source_id: str | None,
        detected_at: str,
        old: str | None,
        new: str | None,
    ) -> int:
        """The delegation-level change a source's event is evidence of: the latest change of
        the same scope when it is this one (same kind, same old and new identities) and this
        source has not shown it yet (a source joining, in this run or a later one); else a
        new change. Only a change's first event enters the outbox (migration 0008)."""
        conn = self.db.conn
        latest = conn.execute(
            "SELECT id, kind, old_id, new_id FROM changes WHERE delegation = ? AND attribute = ? "
            "AND scope = ? ORDER BY id DESC LIMIT 1",
            (delegation, attribute, identity.scope),
        ).fetchone()
        if (
            latest is not None
            and tuple(latest[1:]) == (kind, identity.old_id, identity.new_id)
            and conn.execute(
                "SELECT 1 FROM events WHERE change_id = ? AND source_id IS ? LIMIT 1",
                (latest[0], source_id),
            ).fetchone()
            is None
        ):
            return int(latest[0])
        cur = conn.execute(
            "INSERT INTO changes (kind, delegation, attribute, scope, old, new, old_id, new_id, "
            "detected_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                kind,
                delegation,
                attribute,
                identity.scope,
                old,
                new,
                identity.old_id,
                identity.new_id,
                detected_at,
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
        return decompress_body(compression, data)

    def statuses(self) -> list[SourceStatus]:
        """Health of every source known to the database: the ``source_health`` view, plus the
        last outcome, the last change and the number of snapshots.

        ``last_change`` is when the source last reported a change (an event other than a
        health event); a new page body whose facts stayed the same is not a change.
        """
        health = ",".join("?" * len(HEALTH_KINDS))
        rows = self.db.conn.execute(
            f"""
            SELECT h.source_id, h.url, h.parser, h.last_check,
              (SELECT outcome FROM fetch_log WHERE source_id = h.source_id
                 ORDER BY id DESC LIMIT 1),
              h.last_success, h.consecutive_failures, h.last_error,
              (SELECT detected_at FROM events WHERE source_id = h.source_id
                 AND kind NOT IN ({health}) ORDER BY id DESC LIMIT 1),
              (SELECT COUNT(*) FROM snapshots WHERE source_id = h.source_id),
              h.parse_status, h.parse_error,
              (SELECT final_url FROM fetch_log WHERE source_id = h.source_id
                 AND outcome != 'failed' ORDER BY id DESC LIMIT 1)
            FROM source_health h
            ORDER BY h.source_id
            """,
            HEALTH_KINDS,
        ).fetchall()
        return [SourceStatus(*r) for r in rows]

    @property
    def outbox(self) -> Outbox:
        """The delivery queue (storage/outbox.py); write through it inside ``transaction()``."""
        return Outbox(self.db.conn)

    def instance_id(self) -> str:
        """This database's random id, made when its schema was created (Message-IDs)."""
        row = self.db.conn.execute("SELECT value FROM meta WHERE key = 'instance_id'").fetchone()
        if row is None:
            raise StorageError(f"{self.path}: the database has no instance id")
        return str(row[0])

    def backdate(self, delta: timedelta) -> None:
        """Move every stored time back by ``delta`` (the demo records its first check a week
        earlier so that ``history --as-of`` shows something): demo and test machinery."""
        shift = f"-{int(delta.total_seconds())} seconds"
        conn = self.db.conn
        with self.transaction():
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND sql NOT LIKE '%VIRTUAL TABLE%' AND name NOT LIKE '%_fts%' "
                    "AND name NOT LIKE '\\_%' ESCAPE '\\'"
                )
            ]
            for table in tables:
                columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
                for column in set(columns) & set(_TIME_COLUMNS):
                    conn.execute(
                        f'UPDATE "{table}" SET "{column}" = '
                        f"strftime('%Y-%m-%dT%H:%M:%SZ', \"{column}\", ?) "
                        f'WHERE "{column}" IS NOT NULL',
                        (shift,),
                    )

    def first_check(self) -> str:
        """When the first check recorded here started (a stored time)."""
        row = self.db.conn.execute("SELECT MIN(started_at) FROM fetch_log").fetchone()
        if row is None or row[0] is None:
            raise StorageError(f"{self.path}: no check recorded yet")
        return str(row[0])

    def latest_snapshot_id(self, source_id: str) -> int | None:
        row = self.db.conn.execute(
            "SELECT MAX(id) FROM snapshots WHERE source_id = ?", (source_id,)
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # The read-only queries of `changes`, `history` and `export` (storage/queries.py).

    def select_events(
        self,
        *,
        since: str | None = None,
        delegation: str | None = None,
        kinds: tuple[str, ...] = (),
        latest: int | None = None,
    ) -> list[dict[str, Any]]:
        return queries.select_events(
            self.db, since=since, delegation=delegation, kinds=kinds, latest=latest
        )

    def facts_as_of(self, delegation: str, at: str) -> list[queries.FactAt]:
        return queries.facts_as_of(self.db, delegation, at)

    def delegation_ids(self) -> list[str]:
        return queries.delegation_ids(self.db)

    def reported_delegations(self) -> set[str]:
        """Every delegation a fact or an event of this database names."""
        return set(queries.delegation_ids(self.db)) | {
            r[0]
            for r in self.db.conn.execute(
                "SELECT DISTINCT delegation FROM events WHERE delegation IS NOT NULL"
            )
        }

    def memberships(self) -> list[dict[str, Any]]:
        return queries.memberships(self.db)

    def delegations_overview(self) -> list[dict[str, Any]]:
        return queries.delegations_overview(self.db)

    def delegation_changes(
        self,
        *,
        since: str | None = None,
        ids: Sequence[int] | None = None,
        delegation: str | None = None,
        kinds: tuple[str, ...] = (),
        latest: int | None = None,
    ) -> list[queries.DelegationChange]:
        return queries.delegation_changes(
            self.db, since=since, ids=ids, delegation=delegation, kinds=kinds, latest=latest
        )

    def delegation_now(self, delegation: str) -> list[queries.NowRow]:
        return queries.delegation_now(self.db, delegation)

    def open_disagreements(self, delegation: str) -> list[dict[str, Any]]:
        return queries.open_disagreements(self.db, delegation)

    def events(self, since: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM events"
        params: list[Any] = []
        if since is not None:
            sql += " WHERE detected_at >= ?"
            params.append(since)
        return [dict(row) for row in self.db.query(sql + " ORDER BY id", params)]


class _StoredNews(NewsMemory):
    """A source's earlier news items, read from the database when the rule asks."""

    def __init__(self, conn: sqlite3.Connection, source_id: str) -> None:
        self.conn = conn
        self.source_id = source_id

    def listed_before(self) -> set[str]:
        """Only confirmed sightings count (facts, not the ``news`` table, which keeps every
        parse's items): an item first seen inside a flip that was not confirmed is still
        reported once it is confirmed."""
        rows = self.conn.execute(
            "SELECT DISTINCT key FROM facts WHERE source_id = ? AND subject = 'news' "
            "AND attribute = 'item' AND ended_at IS NOT NULL",
            (self.source_id,),
        )
        return {r[0] for r in rows}

    def stored(self, url: str) -> tuple[str | None, str | None]:
        row = self.conn.execute(
            "SELECT summary, text FROM news WHERE source_id = ? AND url = ?",
            (self.source_id, url),
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)


def _store_news(
    conn: sqlite3.Connection, source_id: str, sighting: Sighting, news: Sequence[NewsRow]
) -> None:
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
                source_id,
                n.url,
                n.title,
                n.published,
                n.date_text,
                n.summary,
                n.text,
                sighting.stamp,
                sighting.snapshot_id,
            )
            for n in news
        ],
    )


@dataclass(frozen=True)
class _OpenDisagreement:
    """A ``disagreement_log`` row not ended: a finding (``event_id``) or pending (None)."""

    id: int
    competing: str  # JSON
    event_id: int | None
    since: str


def _sort_key(key: tuple[str, str, str | None]) -> tuple[str, str, str]:
    return (key[0], key[1], key[2] or "")


def _competing_json(competing: Sequence[tuple[str, str]]) -> str:
    return json.dumps(
        [{"source": s, "value": v} for s, v in competing], ensure_ascii=False, sort_keys=True
    )


def _without_passwords(check: CheckInput) -> CheckInput:
    """The database never holds a URL's password (``http://user:***@host/`` instead)."""
    url = redact_url(check.url)
    final_url = check.final_url and redact_url(check.final_url)
    error = check.error and redact_secrets(check.error)
    if (url, final_url, error) == (check.url, check.final_url, check.error):
        return check  # the usual case: nothing to hide, no copy
    return replace(check, url=url, final_url=final_url, error=error)


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _with_error(check: CheckInput, kind: str, message: str) -> CheckInput:
    return replace(check, error_kind=kind, error=message, not_modified=False)
