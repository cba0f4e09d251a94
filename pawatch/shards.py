"""Fetch processes: a large run's checks spread over one process per core.

One event loop fetching through httpx costs about 1 ms of CPU per request, and parsing a
60 KB page about as much again: a run of a thousand pages is CPU-bound in whichever process
does both. So a large run starts a few *fetch processes*; each fetches its share of the
sources with its own ``Fetcher``, hashes, compresses and parses each body itself (no body
crosses a pipe twice), and sends the run's process only what storage records (the check,
its compressed body, its parse). The run's process stays the one writer.

Politeness holds across processes (``plan_shards``): a host with a delay between requests,
or fewer concurrent requests than processes, stays whole in one process; otherwise its
sources are dealt out and each process gets a share of the host's concurrency (the shares
add up to ``per_host_concurrency``), as of ``global_concurrency``. Each process asks for
robots.txt itself, so a host split over processes has it fetched once per process.

Parsing stays bounded in time: a process announces each parse before it starts; when a parse
takes longer than ``parse_timeout`` the process is killed (a C parser stuck in a page cannot
be interrupted), the page is recorded as a parse failure with its body, and a new process
takes over the sources the killed one had not finished (fetching them again). A process that
dies without finishing anything ends its remaining sources as failed checks.

Processes are forked where the caller's ``fork`` runs them: the pipeline runs them in the
store's writer thread, the one thread that uses SQLite, which is then between statements, so
no child starts with an SQLite lock held. A fetch process never opens the database: it asks
the run's process for the stored snapshots it compares with. Checks without a parse (304s,
unchanged bodies) go to the run's process up to ``QUIET_BATCH`` to a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from pawatch.config import HttpSettings, Source
from pawatch.prepare import (
    Analysed,
    analyse,
    fetch_check,
    internal_failure,
    parse_timed_out,
    parse_unfinished,
    utcnow,
)
from pawatch.scraper.fetch import Fetcher, FetchResult
from pawatch.scraper.parsers import ParserSpec, get_parser
from pawatch.storage import CheckInput, Snapshot, StorageError, Validators
from pawatch.storage.facts import ParseInput
from pawatch.workers import become_worker, start_process, stop_process, wait_readable

__all__ = ["Shard", "plan_shards", "run_shards"]

# A run with fewer sources than this checks them in its own process: forking costs more than
# it saves there (and the daemon's batches are small).
MIN_SOURCES_PER_PROCESS = 32
QUIET_BATCH = 100  # checks without a parse sent to the run's process in one message
QUIET_DELAY = 0.02  # seconds a quiet check waits for others to share its message


@dataclass(frozen=True)
class Shard:
    """The sources one fetch process checks, and the HTTP settings it checks them with."""

    http: HttpSettings
    sources: tuple[Source, ...]


def _share(total: int, parts: int, index: int) -> int:
    """``index``'s part of ``total`` split in ``parts`` (the parts add up to ``total``)."""
    return max(1, total // parts + (1 if index < total % parts else 0))


def plan_shards(
    http: HttpSettings,
    sources: Sequence[Source],
    processes: int,
    min_sources: int = MIN_SOURCES_PER_PROCESS,
) -> list[Shard]:
    """Split ``sources`` over at most ``processes`` fetch processes (each with at least
    ``min_sources`` sources) without making any host see more concurrent requests, or
    requests closer together, than the settings allow. One shard: check everything in this
    process."""
    processes = min(processes, len(sources) // max(1, min_sources))
    if processes <= 1:
        return [Shard(http, tuple(sources))]
    by_host: dict[str, list[Source]] = {}
    for source in sources:
        by_host.setdefault(source.host, []).append(source)
    split = http.per_host_delay == 0 and http.per_host_concurrency >= processes
    groups: list[list[Source]] = [[] for _ in range(processes)]
    if split:  # each host's sources dealt out: every process gets a share of every host
        for n, source in enumerate(s for host in by_host.values() for s in host):
            groups[n % processes].append(source)
    else:  # whole hosts, the largest first, each to the process with the fewest sources
        for host in sorted(by_host.values(), key=len, reverse=True):
            min(groups, key=len).extend(host)
    groups = [g for g in groups if g]
    if len(groups) <= 1:
        return [Shard(http, tuple(sources))]
    return [
        Shard(
            replace(
                http,
                per_host_concurrency=(
                    _share(http.per_host_concurrency, len(groups), i)
                    if split
                    else http.per_host_concurrency
                ),
                global_concurrency=_share(http.global_concurrency, len(groups), i),
            ),
            tuple(group),
        )
        for i, group in enumerate(groups)
    ]


# -- in the fetch process ----------------------------------------------------------------


def _lean(check: CheckInput) -> CheckInput:
    """The check without its raw body (storage needs the hash, the compressed copy, the size)."""
    if check.body is None:
        return check
    return replace(check, body=None, size=len(check.body))


def _serve(conn: Connection, parent: int, shard: Shard, previous: dict[str, Validators]) -> None:
    become_worker(parent)
    try:
        asyncio.run(_check_all(conn, shard, previous))
        conn.send(("end",))
    except BaseException as exc:  # reported; the parent ends the unfinished sources
        with contextlib.suppress(Exception):
            conn.send(("crash", f"{type(exc).__name__}: {exc}"))
        raise


class _Replies:
    """The fetch process's side of reading stored snapshots through the run's process (the
    only one that opens the database: a forked process must not use SQLite state it
    inherited). A request is ("read", request id, snapshot id); the answer comes back on
    the same pipe as ("snapshot", request id, Snapshot) or ("error", request id, message)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.waiting: dict[int, asyncio.Future[Snapshot]] = {}
        self.next_id = 0

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(self.conn.fileno(), self._readable)

    def stop(self) -> None:
        asyncio.get_running_loop().remove_reader(self.conn.fileno())

    async def read(self, snapshot_id: int) -> Snapshot:
        self.next_id += 1
        future: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self.waiting[self.next_id] = future
        self.conn.send(("read", self.next_id, snapshot_id))
        return await future

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                kind, request, value = self.conn.recv()
                future = self.waiting.pop(request, None)
                if future is None or future.done():
                    continue
                if kind == "snapshot":
                    future.set_result(value)
                else:
                    future.set_exception(StorageError(value))
        except (EOFError, OSError):  # the run's process is gone: nothing will answer
            self.stop()
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(StorageError("the run's process is gone"))
            self.waiting.clear()


async def _check_all(conn: Connection, shard: Shard, previous: dict[str, Validators]) -> None:
    announced: set[str] = set()
    replies = _Replies(conn)
    replies.start()

    async def parse_here(
        check: CheckInput,
        source: Source,
        spec: ParserSpec,
        result: FetchResult,
        stored: Snapshot | None,
        same: bool,
    ) -> Analysed:
        conn.send(("parsing", source.id, _lean(check)))  # watched from now on
        announced.add(source.id)
        return analyse(source, spec, result, stored, same)

    # Checks without a parse (304s, unchanged bodies, failures) go several to a message:
    # one pickling, one write and one wake-up of the run's process for up to QUIET_BATCH.
    quiet: list[tuple[str, CheckInput, None]] = []
    timer: asyncio.TimerHandle | None = None

    def send_quiet() -> None:
        nonlocal timer
        if timer is not None:
            timer.cancel()
            timer = None
        if quiet:
            conn.send(("checked", quiet.copy()))
            quiet.clear()

    async with Fetcher(shard.http, shard.sources) as fetcher:

        async def check(source: Source) -> None:
            nonlocal timer
            spec = get_parser(source.parser)
            done, parse = await fetch_check(
                fetcher, source, spec, previous.get(source.id), replies.read, parse_here
            )
            done = _lean(done)
            if source.id in announced:  # the compressed body went with "parsing"
                conn.send(("checked", [(source.id, replace(done, compressed=None), parse)]))
            elif parse is not None:
                conn.send(("checked", [(source.id, done, parse)]))
            else:
                quiet.append((source.id, done, None))
                if len(quiet) >= QUIET_BATCH:
                    send_quiet()
                elif timer is None:
                    timer = asyncio.get_running_loop().call_later(QUIET_DELAY, send_quiet)

        try:
            await asyncio.gather(*(check(s) for s in shard.sources))
        finally:
            send_quiet()
    replies.stop()


# -- in the run's process ----------------------------------------------------------------

# Records checks made in a fetch process (in the run's process, in the background).
Record = Callable[[list[tuple[Source, CheckInput, ParseInput | None]]], Awaitable[None]]
Read = Callable[[int], Awaitable[Snapshot]]
Started = tuple[BaseProcess, Connection]
# Runs a function that starts a fetch process where forking is safe (the writer thread).
Fork = Callable[[Callable[[], Started]], Awaitable[Started]]


def _start(shard: Shard, previous: dict[str, Validators]) -> tuple[BaseProcess, Connection]:
    context = multiprocessing.get_context("fork")
    return start_process(context, _serve, (shard, previous), "pawatch-fetch")


class _Answers:
    """The run's side of a fetch process's snapshot reads: each read in a task, the answer
    sent from a thread (the process may be blocked sending us results: a blocking send
    here could wait for it forever), one answer at a time on the pipe."""

    def __init__(self, conn: Connection, read: Read) -> None:
        self.conn = conn
        self.read = read
        self.lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()

    def answer(self, request: int, snapshot_id: int) -> None:
        task = asyncio.create_task(self._answer(request, snapshot_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, request: int, snapshot_id: int) -> None:
        reply: tuple[str, int, Any]
        try:
            reply = ("snapshot", request, await self.read(snapshot_id))
        except Exception as exc:  # sent over: that check fails, the others go on
            reply = ("error", request, f"cannot read snapshot {snapshot_id}: {exc}")
        async with self.lock:
            with contextlib.suppress(OSError, ValueError):  # the process is gone
                await asyncio.get_running_loop().run_in_executor(None, self.conn.send, reply)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _drive(
    shard: Shard,
    previous: dict[str, Validators],
    read: Read,
    parse_timeout: float,
    fork: Fork,
    record: Record,
) -> int:
    """Run one shard to its end (replacing its process after a parse past the time limit);
    ``record`` each check as it arrives, answer its reads of stored snapshots. How many
    processes were replaced."""
    pending = {s.id: s for s in shard.sources}
    replaced = 0
    while pending:
        current = Shard(shard.http, tuple(pending.values()))
        process, conn = await fork(functools.partial(_start, current, previous))
        answers = _Answers(conn, read)
        parsing: tuple[Source, CheckInput, float] | None = None
        progress = False
        timed_out = False
        reason: str | None = None
        try:
            while True:
                timeout = None
                if parsing is not None:
                    timeout = max(0.0, parsing[2] + parse_timeout - time.monotonic())
                if not await wait_readable(conn, timeout):
                    assert parsing is not None
                    timed_out = True
                    reason = "the parse took too long"
                    break
                try:
                    message: tuple[Any, ...] = conn.recv()
                except (EOFError, OSError):
                    process.join(5)
                    reason = f"the fetch process ended (exit code {process.exitcode})"
                    break
                kind = message[0]
                if kind == "read":
                    answers.answer(message[1], message[2])
                elif kind == "parsing":
                    parsing = (pending[message[1]], message[2], time.monotonic())
                elif kind == "checked":
                    done = []
                    for source_id, check, parse in message[1]:
                        source = pending.pop(source_id)
                        if parsing is not None and parsing[0].id == source_id:
                            check = replace(check, compressed=parsing[1].compressed)
                            parsing = None
                        done.append((source, check, parse))
                    progress = True
                    await record(done)
                elif kind == "crash":
                    reason = f"the fetch process failed: {message[1]}"
                    break
                elif kind == "end":
                    break
        finally:
            await answers.close()
            stop_process(process, conn, kill=reason is not None or bool(pending))
        if parsing is not None:  # the page it was parsing is what stopped it
            source, check, _ = parsing
            pending.pop(source.id, None)
            spec = get_parser(source.parser)
            failed = (
                parse_timed_out(spec, parse_timeout)
                if timed_out
                else parse_unfinished(spec, reason or "the fetch process ended while parsing")
            )
            await record([(source, check, failed)])
            replaced += 1
            continue
        if pending and not progress:  # died before finishing anything: do not loop
            why = reason or "the fetch process ended"
            await record([(s, internal_failure(s, utcnow(), why), None) for s in pending.values()])
            pending.clear()
        elif pending:
            replaced += 1
    return replaced


async def run_shards(
    shards: Sequence[Shard],
    previous: dict[str, Validators],
    read: Read,
    parse_timeout: float,
    fork: Fork,
    record: Record,
) -> int:
    """Check every shard's sources in fetch processes, at once; ``record`` each check (in
    this process) as it arrives; ``read`` the stored snapshots they ask for. Returns how
    many processes had to be replaced."""
    replaced = await asyncio.gather(
        *(_drive(s, previous, read, parse_timeout, fork, record) for s in shards)
    )
    return sum(replaced)
