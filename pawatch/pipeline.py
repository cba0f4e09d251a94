"""One run: config -> fetch -> snapshot -> parse -> facts/changes, written in transactions.

``check_sources`` checks the given sources concurrently and records each check as soon as it
completes, in the store's writer thread (``Recorder``: checks that arrive while it writes
share the next transaction, all or nothing), so a failing source never holds back or spoils
the others. A check's steps (fetch, hash, compress, parse) are
``pawatch.prepare.fetch_check``; a body is parsed only when it differs from the one parsed
last time (or the parser changed): an unchanged page or a 304 costs no parsing. A small run
checks in this process, parsing in worker processes; a large one spreads its sources over
fetch processes (``pawatch.shards``).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import httpx

from pawatch.config import Settings, Source
from pawatch.prepare import (
    Analysed,
    analyse_job,
    fetch_check,
    parse_job,
    parse_timed_out,
    parse_unfinished,
    utcnow,
)
from pawatch.scraper.fetch import Fetcher, FetchResult
from pawatch.scraper.parsers import ParserSpec, get_parser
from pawatch.shards import Shard, plan_shards, run_shards
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
from pawatch.storage.facts import ParseInput, Policy, Version
from pawatch.workers import WorkerDied, WorkerPool, WorkerTimeout, cpu_count

OUTCOMES = ("new", "changed", "unchanged", "not_modified", "failed")
# Processes for parsing (a small run's parse workers, a large run's fetch processes): one per
# core (this machine class: 2), so parsing uses both cores while the event loop fetches and
# stores. (A small run hashes and compresses on the event loop: it has few pages.)
CPU_WORKERS = max(2, min(4, cpu_count()))
log = logging.getLogger("pawatch.pipeline")
T = TypeVar("T")


async def in_writer(store: Store, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in the store's writer thread (``Store.writer``): the event loop goes
    on fetching and handing bodies to the workers while SQLite writes (it releases the GIL
    then). Every use of the store during a run goes through it, so transactions never mix."""
    return await asyncio.get_running_loop().run_in_executor(store.writer(), func, *args)


@dataclass
class RunSummary:
    started_at: datetime
    finished_at: datetime | None = None
    # Not in repr: asyncio.run's SIGINT bookkeeping formats the finished main task, with its
    # result, when the run ends (CPython 3.11): the repr of a thousand outcomes cost 0.4 s.
    outcomes: list[CheckOutcome] = field(default_factory=list, repr=False)
    reconciled: list[int] = field(default_factory=list)  # sources_disagree/agree event ids
    replaced: int = 0  # fetch processes replaced (a parse past the time limit, a crash)

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


class Recorder:
    """Writes checks to the store in groups (group commit): a group is what arrived while the
    writer thread was busy with the previous one (at most ``size`` checks), written in one
    transaction, all or nothing: a crash loses a group whole, never half of a check. A
    commit per check was most of the cost of a large run's writes. A group the database
    refuses is written again one check at a time, so a check it refuses fails alone."""

    def __init__(self, store: Store, *, size: int = 100) -> None:
        self.store = store
        self.size = size
        self.groups = 0
        self._items: list[tuple[CheckInput, ParseInput | None, Policy]] = []
        self._futures: list[asyncio.Future[CheckOutcome]] = []
        self._busy = False

    async def record(
        self, check: CheckInput, parse: ParseInput | None, policy: Policy
    ) -> CheckOutcome:
        future: asyncio.Future[CheckOutcome] = asyncio.get_running_loop().create_future()
        self._items.append((check, parse, policy))
        self._futures.append(future)
        self._next()
        return await future

    def _next(self) -> None:
        if self._busy or not self._items:
            return
        self._busy = True
        self.groups += 1
        items, self._items = self._items[: self.size], self._items[self.size :]
        futures, self._futures = self._futures[: self.size], self._futures[self.size :]
        written = asyncio.get_running_loop().run_in_executor(
            self.store.writer(), self._write, items
        )
        written.add_done_callback(lambda done: self._settle(futures, done))

    def _write(
        self, items: list[tuple[CheckInput, ParseInput | None, Policy]]
    ) -> list[CheckOutcome | Exception]:
        if len(items) > 1:
            try:
                return list(self.store.record_checks(items))
            except Exception:  # one check the database refuses: each on its own, below
                log.debug("a group of %d checks was refused; writing them one by one", len(items))
        results: list[CheckOutcome | Exception] = []
        for check, parse, policy in items:
            try:
                results.append(self.store.record_check(check, parse, policy))
            except Exception as exc:
                results.append(exc)
        return results

    def _settle(
        self,
        futures: list[asyncio.Future[CheckOutcome]],
        done: asyncio.Future[list[CheckOutcome | Exception]],
    ) -> None:
        self._busy = False
        error = None if done.cancelled() else done.exception()
        results: list[CheckOutcome | BaseException]
        if done.cancelled() or error is not None:
            results = [error or asyncio.CancelledError()] * len(futures)
        else:
            results = list(done.result())
        for future, result in zip(futures, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        self._next()


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
            parsed = parse_timed_out(spec, pool.timeout)
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

    ``pool`` runs the parsing of checks made in this process (the daemon keeps one for its
    lifetime); without it, the run starts its own workers when it needs them and stops them
    at the end. A large run fetches and parses in fetch processes (``pawatch.shards``).
    """
    workers = pool or WorkerPool(CPU_WORKERS, settings.http.parse_timeout)
    # What is alive now (modules, config, sources) outlives the run: frozen, the garbage
    # collector does not walk it at every collection, here and in the fetch processes
    # (where it also keeps the pages shared with this one unwritten). Measured on 1000
    # new pages: collections took 76 -> 25 ms here and 25 -> 3 ms in each fetch process.
    # Unfrozen at the end, so a daemon's cycles collect what earlier ones left.
    gc.freeze()
    try:
        return await _check_sources(settings, sources, store, transport, on_outcome, workers)
    finally:
        gc.unfreeze()
        if pool is None:
            workers.close()


def plan_run(
    settings: Settings, sources: Sequence[Source], store: Store, custom_transport: bool
) -> list[Shard]:
    """How a run's checks are spread (``pawatch.shards.plan_shards``): over ``[http]
    fetch_processes`` processes, or with 0 (the default) one per core for a run of at least
    ``MIN_SOURCES_PER_PROCESS`` sources per process; in this process alone when the store is
    in memory, the transport is a test's or the system is not Linux."""
    if custom_transport or store.path == ":memory:" or not sys.platform.startswith("linux"):
        # fetch processes are forked, and die with the run through Linux's PDEATHSIG
        return plan_shards(settings.http, sources, 1)
    if settings.http.fetch_processes:
        return plan_shards(settings.http, sources, settings.http.fetch_processes, min_sources=1)
    return plan_shards(settings.http, sources, CPU_WORKERS)


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
    rewritten = False  # a baseline restarted or facts re-derived: the validators moved
    for source in sources:
        prev = previous.get(source.id)
        if changed.get(source.id) == "url":
            log.info("%s: the URL changed: its next good check is a new baseline", source.id)
            await in_writer(store, store.restart_baseline, source.id, summary.started_at)
            rewritten = True
        elif changed.get(source.id) == "config" or (
            prev and prev.parser_version not in (None, specs[source.id].version)
        ):
            # what the facts are read with changed, not the world: re-read the history silently
            log.info(
                "%s: parser or its options changed: re-deriving facts from the stored snapshots",
                source.id,
            )
            await reparse_source_bounded(store, source, workers)
            rewritten = True
    if rewritten:
        previous = await in_writer(store, store.latest_validators)
    previous = {
        source_id: validators
        for source_id, validators in previous.items()
        if changed.get(source_id) != "url"  # old validators belong to the old page
    }

    recorder = Recorder(store)
    # Checks fetched but not yet recorded: without a bound, a slow writer (or parse) let
    # every fetched body of a large run wait in memory at once.
    in_flight = asyncio.Semaphore(max(32, 4 * settings.http.global_concurrency))
    writes: list[asyncio.Task[None]] = []

    async def record(source: Source, check: CheckInput, parse: ParseInput | None) -> None:
        outcome = await recorder.record(check, parse, policy_for(source))
        summary.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    async def admit(checks: list[tuple[Source, CheckInput, ParseInput | None]]) -> None:
        """Record checks made in a fetch process, in the background. A slot is held until
        written: the fetch processes wait when the writer falls behind."""
        for source, check, parse in checks:
            await in_flight.acquire()
            task = asyncio.create_task(record(source, check, parse))
            task.add_done_callback(lambda _: in_flight.release())
            writes.append(task)

    errors: list[BaseException] = []
    shards = plan_run(settings, sources, store, transport is not None)
    try:
        if len(shards) > 1:
            summary.replaced = await run_shards(
                shards,
                previous,
                lambda snapshot_id: in_writer(store, store.snapshot, snapshot_id),
                settings.http.parse_timeout,
                lambda start: in_writer(store, start),
                admit,
            )
        else:
            errors = await _check_here(
                settings, sources, store, transport, workers, previous, specs, in_flight, record
            )
    finally:
        results = await asyncio.gather(*writes, return_exceptions=True)
    errors += [r for r in results if isinstance(r, BaseException)]
    if errors:  # the database refused a write (disk full, locked...): nothing half-written
        raise StorageError(f"{store.path}: cannot record a check: {errors[0]}") from errors[0]
    summary.finished_at = utcnow()
    # the sources compared once all were read: one change reaching them all is no disagreement
    summary.reconciled = await in_writer(store, store.reconcile, summary.finished_at)
    await in_writer(store, store.index_texts)  # the run's new readable texts, searchable
    return summary


async def _check_here(
    settings: Settings,
    sources: Sequence[Source],
    store: Store,
    transport: httpx.AsyncBaseTransport | None,
    workers: WorkerPool,
    previous: dict[str, Validators],
    specs: dict[str, ParserSpec],
    in_flight: asyncio.Semaphore,
    record: Callable[[Source, CheckInput, ParseInput | None], Awaitable[None]],
) -> list[BaseException]:
    """Check ``sources`` with this process's event loop, parsing in ``workers`` within the
    parse time limit (a parse past it kills its worker and is a parse failure; the body is
    still stored). The errors of checks that could not be recorded."""

    async def read_snapshot(snapshot_id: int) -> Snapshot:
        return await in_writer(store, store.snapshot, snapshot_id)

    async def parse_in_worker(
        check: CheckInput,
        source: Source,
        spec: ParserSpec,
        result: FetchResult,
        stored: Snapshot | None,
        same: bool,
    ) -> Analysed:
        try:
            return await workers.run(analyse_job, source, result, stored, same)
        except WorkerTimeout:
            failed = parse_timed_out(spec, workers.timeout)
        except WorkerDied as exc:
            failed = parse_unfinished(spec, str(exc))
        log.warning("%s: %s", source.id, failed.error)
        return failed, None

    async with Fetcher(settings.http, sources, transport=transport) as fetcher:

        async def check(source: Source) -> None:
            async with in_flight:  # fetched bodies waiting for a worker or the writer stay few
                done, parse = await fetch_check(
                    fetcher,
                    source,
                    specs[source.id],
                    previous.get(source.id),
                    read_snapshot,
                    parse_in_worker,
                )
                await record(source, done, parse)

        # every check runs to its end even when another one cannot be stored
        results = await asyncio.gather(*(check(s) for s in sources), return_exceptions=True)
    return [r for r in results if isinstance(r, BaseException)]


def run_once(
    settings: Settings,
    sources: Sequence[Source],
    store: Store,
    *,
    on_outcome: Callable[[CheckOutcome], None] | None = None,
) -> RunSummary:
    return asyncio.run(check_sources(settings, sources, store, on_outcome=on_outcome))
