"""One run: config -> fetch -> snapshot -> parse -> facts/changes (one transaction per check).

``check_sources`` fetches the given sources concurrently through one ``Fetcher`` and records
each check in its own transaction as soon as it completes, so a failing source never holds
back or spoils the others. A body is parsed only when it differs from the one parsed last
time (or the parser changed); an unchanged page or a 304 costs no parsing.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from pawatch.config import Settings, Source
from pawatch.scraper.charset import decode_body
from pawatch.scraper.errors import FetchError
from pawatch.scraper.fetch import Fetcher, FetchResult
from pawatch.scraper.fetch import Validators as HttpValidators
from pawatch.scraper.parsers import ParseError, ParserSpec, get_parser
from pawatch.scraper.parsers.records import NewsItem, PageText
from pawatch.storage import (
    CheckInput,
    CheckOutcome,
    Snapshot,
    SourceRow,
    StorageError,
    Store,
    Validators,
    format_time,
)
from pawatch.storage.bodytext import readable_text
from pawatch.storage.facts import Held, NewsRow, ParseInput, Policy, Version
from pawatch.storage.store import compress_body
from pawatch.workers import WorkerDied, WorkerPool, WorkerTimeout, cpu_count

OUTCOMES = ("new", "changed", "unchanged", "not_modified", "failed")
# Worker processes for compressing and parsing: one per core (this machine class: 2), so
# parsing uses both cores while the event loop fetches and stores.
CPU_WORKERS = max(2, min(4, cpu_count()))
log = logging.getLogger("pawatch.pipeline")
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


async def in_writer(store: Store, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in the store's writer thread (``Store.writer``): the event loop goes
    on fetching and handing bodies to the workers while SQLite writes (it releases the GIL
    then). Every use of the store during a run goes through it, so transactions never mix."""
    return await asyncio.get_running_loop().run_in_executor(store.writer(), func, *args)


@dataclass
class RunSummary:
    started_at: datetime
    finished_at: datetime | None = None
    outcomes: list[CheckOutcome] = field(default_factory=list)
    reconciled: list[int] = field(default_factory=list)  # sources_disagree/agree event ids

    def ids(self, outcome: str) -> list[str]:
        return sorted(o.source_id for o in self.outcomes if o.outcome == outcome)

    @property
    def failed(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if o.outcome == "failed"]

    @property
    def broken(self) -> list[CheckOutcome]:
        """Fetched, but the page cannot be read (parse error, no block, collapsed list)."""
        return [o for o in self.outcomes if o.broken]

    @property
    def exit_code(self) -> int:
        """0 when every source was fetched and read, 1 when some failed or is broken."""
        return 1 if self.failed or self.broken else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "started_at": format_time(self.started_at),
            "finished_at": format_time(self.finished_at or self.started_at),
            "checked": len(self.outcomes),
            "counts": {name: len(self.ids(name)) for name in OUTCOMES},
            "sources": {name: self.ids(name) for name in OUTCOMES},
            "events": sum(len(o.event_ids) for o in self.outcomes) + len(self.reconciled),
            "event_ids": sorted(
                [*(i for o in self.outcomes for i in o.event_ids), *self.reconciled]
            ),
            "errors": {o.source_id: o.error for o in self.failed},
            "broken": {o.source_id: o.parse_error for o in self.broken},
            "degraded": {o.source_id: o.degraded for o in self.outcomes if o.degraded},
        }


def fingerprint(source: Source) -> str:
    """What a source's facts depend on besides its URL: parser, delegation, options, charset."""
    data = [source.parser, source.delegation, source.options, source.encoding]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def policy_for(source: Source) -> Policy:
    watch = source.options.get("watch") or ()
    return Policy(
        confirm=source.confirm,
        failing_after=source.failing_after,
        collapse_ratio=source.collapse_ratio,
        watch=tuple(watch) if isinstance(watch, list | tuple) else (str(watch),),
    )


def parse_body(
    source: Source, spec: ParserSpec, body: bytes, content_type: str | None, url: str
) -> ParseInput:
    """Decode and parse one body; every failure becomes a ParseInput without facts."""
    try:
        decoded = decode_body(body, content_type, forced=source.encoding)
    except FetchError as exc:
        return ParseInput(spec.version, None, error=f"cannot decode the page: {exc}")
    options = dict(source.options)
    if "delegation" in spec.options:
        # the source's own `delegation` key, else the one given in [sources.options]
        options["delegation"] = source.delegation or options.get("delegation")
    try:
        result = spec.func(decoded.text, url, options)
    except ParseError as exc:
        return ParseInput(spec.version, None, error=str(exc))
    except Exception as exc:  # a parser bug must not look like a change in the world
        log.exception("parser %s crashed on %s", spec.name, url)
        return ParseInput(
            spec.version, None, error=f"parser {spec.name} crashed: {type(exc).__name__}: {exc}"
        )
    if not result.found:
        reason = "; ".join(result.warnings) or f"the {spec.name} parser found nothing to read"
        return ParseInput(spec.version, None, error=reason, warnings=result.warnings)
    news = [
        NewsRow(r.url, r.title, r.date, r.date_text, r.summary, r.text)
        for r in result.records
        if isinstance(r, NewsItem)
    ]
    texts = [r.text for r in result.records if isinstance(r, PageText)]
    return ParseInput(
        spec.version,
        result.facts(),
        warnings=result.warnings,
        news=news,
        text="\n".join(texts) if texts else None,
        held=[Held(u.subject, u.attribute_prefix, u.message) for u in result.unreadable],
    )


def text_diff(before: str, after: str) -> str:
    """A unified diff of two page texts (storage cuts long ones and says so)."""
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "before", "after", lineterm="", n=1
    )
    return "\n".join(lines)


def _check_from_result(source: Source, result: FetchResult) -> CheckInput:
    return CheckInput(
        source_id=source.id,
        url=source.url,
        started_at=result.started_at,
        duration=result.duration,
        attempts=result.attempts,
        http_status=result.status,
        body=None if result.not_modified else result.body,
        not_modified=result.not_modified,
        final_url=result.final_url,
        content_type=result.content_type,
        etag=result.etag,
        last_modified=result.last_modified,
    )


def _check_from_error(source: Source, started: datetime, error: Exception) -> CheckInput:
    duration = (utcnow() - started).total_seconds()
    if isinstance(error, FetchError):
        return CheckInput(
            source_id=source.id,
            url=source.url,
            started_at=started,
            duration=duration,
            attempts=error.attempts,
            http_status=error.status,
            error_kind=error.kind,
            error=str(error),
        )
    log.exception("internal error while fetching %s", source.id)
    return CheckInput(
        source_id=source.id,
        url=source.url,
        started_at=started,
        duration=duration,
        error_kind="internal",
        error=f"internal error: {type(error).__name__}: {error}",
    )


@dataclass(frozen=True)
class Prepared:
    """The CPU-heavy part of one check, done off the event loop: hash, compress, parse."""

    sha256: str | None = None
    compressed: bytes | None = None
    parse: ParseInput | None = None
    text: str | None = None  # the new body's readable text (table snapshot_text)


def _page_text(source: Source, spec: ParserSpec, result: FetchResult, parsed: ParseInput) -> str:
    """The body's readable text: the ``page`` parser's own text when it read the whole page
    (no second parse), else one parse here, in the worker process."""
    whole = not (set(source.options) & {"select", "ignore", "strip"})
    if spec.name == "page" and whole and parsed.text is not None:
        return parsed.text
    return readable_text(result.body, result.content_type, source.encoding)


def _up_to_date(prev: Validators | None, spec: ParserSpec) -> bool:
    return prev is not None and prev.parsed and prev.parser_version == spec.version


def needs_previous_body(prev: Validators | None, spec: ParserSpec, result: FetchResult) -> bool:
    """Whether ``prepare`` needs the source's latest stored body (read it on the loop thread:
    the database connection belongs to it)."""
    if prev is None:
        return False
    if result.not_modified:
        return not _up_to_date(prev, spec)  # parse the stored copy
    return spec.name == "page"  # diff the page text against the previous version's


def prepare(
    source: Source,
    spec: ParserSpec,
    prev: Validators | None,
    result: FetchResult,
    previous: Snapshot | None,
) -> Prepared:
    """Hash, compress and parse one fetched body unless it is the one whose facts are stored.

    Pure CPU work on values (no database): runs in a worker process (``prepare_job``).
    """
    if result.not_modified:
        if previous is None or _up_to_date(prev, spec):
            return Prepared()
        parse = parse_body(source, spec, previous.body, previous.content_type, previous.url)
        return Prepared(parse=parse)
    digest = hashlib.sha256(result.body).hexdigest()
    same = prev is not None and prev.sha256 == digest
    compressed = None if same else compress_body(result.body)
    if same and _up_to_date(prev, spec):
        return Prepared(digest, compressed)
    parsed = parse_body(source, spec, result.body, result.content_type, result.final_url)
    if parsed.text is not None and previous is not None and not same:
        before = parse_body(source, spec, previous.body, previous.content_type, previous.url)
        if before.text is not None and before.text != parsed.text:
            parsed = replace(parsed, text_diff=text_diff(before.text, parsed.text))
    text = None if same else _page_text(source, spec, result, parsed)
    return Prepared(digest, compressed, parsed, text)


def prepare_job(
    source: Source, prev: Validators | None, result: FetchResult, previous: Snapshot | None
) -> Prepared:
    """``prepare`` as sent to a worker process: the parser is looked up there by name. The
    page text is left out of the answer (it was only needed there, for the diff)."""
    prepared = prepare(source, get_parser(source.parser), prev, result, previous)
    if prepared.parse is not None and prepared.parse.text is not None:
        prepared = replace(prepared, parse=replace(prepared.parse, text=None))
    return prepared


def nothing_to_prepare(
    spec: ParserSpec, prev: Validators | None, result: FetchResult, previous: Snapshot | None
) -> Prepared | None:
    """``prepare``'s result when it is cheap (a 304 or the same body, already parsed with
    this parser): no worker needed. None when the body must be compressed or parsed."""
    if result.not_modified:
        return Prepared() if previous is None or _up_to_date(prev, spec) else None
    if prev is None or not _up_to_date(prev, spec):
        return None
    digest = hashlib.sha256(result.body).hexdigest()
    return Prepared(digest) if prev.sha256 == digest else None


async def prepare_bounded(
    pool: WorkerPool,
    source: Source,
    spec: ParserSpec,
    prev: Validators | None,
    result: FetchResult,
    previous: Snapshot | None,
) -> Prepared:
    """``prepare`` in a worker within the pool's time limit. A parse that takes longer (a
    pathological page: the HTML parser cannot be interrupted) is killed with its worker and
    becomes a parse failure, recorded as such; the body is still hashed and stored."""
    cheap = nothing_to_prepare(spec, prev, result, previous)
    if cheap is not None:
        return cheap
    try:
        return await pool.run(prepare_job, source, prev, result, previous)
    except WorkerTimeout:
        error = f"parse took longer than {pool.timeout:g} s"
    except WorkerDied as exc:
        error = f"parser {spec.name} could not finish: {exc}"
    log.warning("%s: %s", source.id, error)
    if result.not_modified:
        return Prepared(parse=ParseInput(spec.version, None, error=error))
    digest = hashlib.sha256(result.body).hexdigest()
    same = prev is not None and prev.sha256 == digest
    compressed = None if same else compress_body(result.body)
    return Prepared(digest, compressed, ParseInput(spec.version, None, error=error))


class QuietChecks:
    """Records checks that need no parsing (304s, unchanged bodies already parsed) several
    to a transaction: a commit per check was most of their cost. A batch is written when it
    has ``size`` checks or ``delay`` seconds after its first one; it is atomic like one
    check (a crash loses the batch whole, never half of it), and every check that parsed a
    body still gets its own transaction."""

    def __init__(self, store: Store, *, size: int = 200, delay: float = 0.02) -> None:
        self.store = store
        self.size = size
        self.delay = delay
        self.batches = 0
        self._items: list[tuple[CheckInput, Policy, asyncio.Future[CheckOutcome]]] = []
        self._timer: asyncio.TimerHandle | None = None

    async def record(self, check: CheckInput, policy: Policy) -> CheckOutcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CheckOutcome] = loop.create_future()
        self._items.append((check, policy, future))
        if len(self._items) >= self.size:
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.delay, self.flush)
        return await future

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._items = self._items, []
        if not items:
            return
        self.batches += 1
        written = asyncio.get_running_loop().run_in_executor(
            self.store.writer(), self.store.record_checks, [(c, None, p) for c, p, _ in items]
        )
        written.add_done_callback(lambda done: self._settle(items, done))

    @staticmethod
    def _settle(
        items: list[tuple[CheckInput, Policy, asyncio.Future[CheckOutcome]]],
        done: asyncio.Future[list[CheckOutcome]],
    ) -> None:
        error = None if done.cancelled() else done.exception()
        if done.cancelled() or error is not None:
            for _, _, future in items:
                if not future.done():
                    future.set_exception(error or asyncio.CancelledError())
            return
        for (_, _, future), outcome in zip(items, done.result(), strict=True):
            if not future.done():
                future.set_result(outcome)


def parse_job(source: Source, body: bytes, content_type: str | None, url: str) -> ParseInput:
    """``parse_body`` as sent to a worker process (the page text is left out)."""
    parsed = parse_body(source, get_parser(source.parser), body, content_type, url)
    return replace(parsed, text=None) if parsed.text is not None else parsed


async def reparse_source_bounded(store: Store, source: Source, pool: WorkerPool) -> int:
    """Re-derive a source's facts from all its stored snapshots with the current parser,
    each snapshot parsed in a worker within the time limit: a stored pathological page (kept
    when its parse timed out) cannot stall a run or ``pawatch reparse``."""
    spec = get_parser(source.parser)
    versions = []
    for snapshot_id, first_seen, last_seen, seen in await in_writer(
        store, store.snapshot_versions, source.id
    ):
        snap = await in_writer(store, store.snapshot, snapshot_id)
        try:
            parsed = await pool.run(parse_job, source, snap.body, snap.content_type, snap.url)
        except WorkerTimeout:
            error = f"parse took longer than {pool.timeout:g} s"
            parsed = ParseInput(spec.version, None, error=error)
        except WorkerDied as exc:
            parsed = ParseInput(spec.version, None, error=f"parser {spec.name}: {exc}")
        versions.append(Version(snapshot_id, first_seen, last_seen, parsed, seen_count=seen))
    return await in_writer(
        store, store.rebuild_facts, source.id, versions, spec.version, policy_for(source)
    )


async def check_sources(
    settings: Settings,
    sources: Sequence[Source],
    store: Store,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    on_outcome: Callable[[CheckOutcome], None] | None = None,
    pool: WorkerPool | None = None,
) -> RunSummary:
    """Check ``sources`` once; return what happened to each.

    ``pool`` runs the parsing (the daemon keeps one for its lifetime); without it, the run
    starts its own workers and stops them at the end.
    """
    workers = pool or WorkerPool(CPU_WORKERS, settings.http.parse_timeout)
    try:
        return await _check_sources(settings, sources, store, transport, on_outcome, workers)
    finally:
        if pool is None:
            workers.close()


async def _check_sources(
    settings: Settings,
    sources: Sequence[Source],
    store: Store,
    transport: httpx.AsyncBaseTransport | None,
    on_outcome: Callable[[CheckOutcome], None] | None,
    workers: WorkerPool,
) -> RunSummary:
    summary = RunSummary(started_at=utcnow())
    changed = await in_writer(
        store,
        store.sync_sources,
        [SourceRow(s.id, s.url, s.parser, s.delegation, fingerprint(s)) for s in sources],
        summary.started_at,
    )
    previous = await in_writer(store, store.latest_validators)
    specs = {s.id: get_parser(s.parser) for s in sources}
    for source in sources:
        prev = previous.get(source.id)
        if changed.get(source.id) == "url":
            log.info("%s: the URL changed: its next good check is a new baseline", source.id)
            await in_writer(store, store.restart_baseline, source.id, summary.started_at)
        elif changed.get(source.id) == "config" or (
            prev and prev.parser_version not in (None, specs[source.id].version)
        ):
            # what the facts are read with changed, not the world: re-read the history silently
            log.info(
                "%s: parser or its options changed: re-deriving facts from the stored snapshots",
                source.id,
            )
            await reparse_source_bounded(store, source, workers)
    previous = {
        source_id: validators
        for source_id, validators in (await in_writer(store, store.latest_validators)).items()
        if changed.get(source_id) != "url"  # old validators belong to the old page
    }

    quiet = QuietChecks(store)
    # Checks between their fetch's start and their body's hand-over to a worker: without a
    # bound, a slow parse let every fetched body of a large run wait in memory at once.
    in_flight = asyncio.Semaphore(max(32, 4 * settings.http.global_concurrency))
    async with Fetcher(settings.http, sources, transport=transport) as fetcher:

        async def check(source: Source) -> None:
            prev = previous.get(source.id)
            spec = specs[source.id]
            validators = HttpValidators(prev.etag, prev.last_modified) if prev else None
            started = utcnow()
            parse: ParseInput | None = None
            outcome: CheckOutcome | None = None
            # fetched bodies waiting for a worker or for the writer stay few
            async with in_flight:
                try:
                    started = utcnow()  # the wait for a slot is not the check's duration
                    result = await fetcher.fetch(source, validators)
                    check_input = _check_from_result(source, result)
                    stored = None
                    if prev is not None and needs_previous_body(prev, spec, result):
                        stored = await in_writer(store, store.snapshot, prev.snapshot_id)
                    prepared = await prepare_bounded(workers, source, spec, prev, result, stored)
                    parse = prepared.parse
                    check_input = replace(
                        check_input,
                        sha256=prepared.sha256,
                        compressed=prepared.compressed,
                        text=prepared.text,
                    )
                except Exception as exc:  # every failure of one source is recorded, never raised
                    check_input = _check_from_error(source, started, exc)
                quiet_check = parse is None and not check_input.failed and prev is not None
                if not quiet_check:
                    outcome = await in_writer(
                        store, store.record_check, check_input, parse, policy_for(source)
                    )
            if outcome is None:  # 304s and unchanged bodies: batched, without holding a slot
                outcome = await quiet.record(check_input, policy_for(source))
            summary.outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

        try:
            # every check runs to its end even when another one cannot be stored
            results = await asyncio.gather(*(check(s) for s in sources), return_exceptions=True)
        finally:
            quiet.flush()  # nothing is left waiting (only if the gather was interrupted)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:  # the database refused a write (disk full, locked...): nothing half-written
        raise StorageError(f"{store.path}: cannot record a check: {errors[0]}") from errors[0]
    summary.finished_at = utcnow()
    # the sources compared once all were read: one change reaching them all is no disagreement
    summary.reconciled = await in_writer(store, store.reconcile, summary.finished_at)
    await in_writer(store, store.index_texts)  # the run's new readable texts, searchable
    return summary


def run_once(
    settings: Settings,
    sources: Sequence[Source],
    store: Store,
    *,
    on_outcome: Callable[[CheckOutcome], None] | None = None,
) -> RunSummary:
    return asyncio.run(check_sources(settings, sources, store, on_outcome=on_outcome))
