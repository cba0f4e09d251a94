"""``pawatch daemon``: check every enabled source on its own schedule until stopped.

One APScheduler 3.x ``AsyncIOScheduler`` job per enabled source (``max_instances=1``,
``coalesce=True``, ``misfire_grace_time`` from ``[daemon]``), its trigger wrapped in
:class:`JitterTrigger` so each run starts up to ``jitter`` seconds late (never more than half
the source's period, and without the drift APScheduler's own ``jitter=`` accumulates on
interval triggers). Jobs that fire within :data:`BATCH_WINDOW` of each other are checked in one
``check_sources`` call; a source already queued or being checked is never checked twice at once.

On start each job's first run comes from the database: a source whose last check (fetch_log)
plus its schedule is in the past is checked at once, the others when their schedule says.

Signals: SIGTERM/SIGINT stop taking new checks, give the in-flight ones ``grace_period``
seconds (a second signal stops at once), deliver what those checks produced (or leave it
pending), write the final heartbeat, close the database and exit 0. SIGHUP reloads the config;
a bad config is logged and the old one kept.

The database is written only under the single-writer lock (:mod:`pawatch.lock`), taken per
batch and per delivery, so ``pawatch run`` from cron can run beside the daemon. The heartbeat
file ``<db>.daemon.json`` (see :func:`heartbeat_path`) says who runs, since when, the next run
per source and the last error; ``pawatch status`` reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from pawatch.config import ConfigError, Settings, Source
from pawatch.config.model import DELIVER_AFTER_CHECKS, DELIVER_OFF
from pawatch.delivery import DeliveryResult, deliver_pending
from pawatch.feed import update_feed_file
from pawatch.heartbeat import heartbeat_path
from pawatch.lock import EXIT_LOCKED, FileLock, LockTimeout, describe_holder
from pawatch.schedules import JitterTrigger, effective_jitter, last_checks, next_due, utcnow
from pawatch.storage import CheckOutcome, StorageError, Store, format_time
from pawatch.workers import WorkerPool

log = logging.getLogger("pawatch.daemon")

BATCH_WINDOW = 0.2  # seconds: jobs firing this close together share one check_sources call
EXIT_CONFIG = 2


class Daemon:
    """The scheduler, the batches, the signals and the heartbeat of one ``pawatch daemon``."""

    def __init__(self, settings: Settings, load: Callable[[], Settings]) -> None:
        self.settings = settings
        self._load = load
        self.db_path = settings.storage.path
        self.lock = FileLock.for_database(self.db_path, "daemon")
        self.instance_lock = FileLock.for_database(self.db_path, "daemon", ".daemon.lock")
        self.store: Store | None = None
        self.scheduler: Any = None
        self.started_at = utcnow()
        self.last_error: dict[str, Any] | None = None
        self.last_checks: dict[str, dict[str, Any]] = {}
        self._state = "starting"
        self._in_flight: dict[str, asyncio.Future[None]] = {}
        self._forming: list[str] = []
        self._forming_task: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._force = asyncio.Event()
        self._lock_guard = asyncio.Lock()
        self._lock_holders = 0
        self._deliver_owed = False
        self._delivery_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._reload_task: asyncio.Task[None] | None = None
        self._triggers: dict[str, JitterTrigger] = {}
        self._workers: WorkerPool | None = None  # parse workers, kept (and replaced) for life

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; the exit code."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        try:
            taken = self.instance_lock.try_acquire()
        except OSError as exc:
            log.error("cannot create the lock file %s: %s", self.instance_lock.path, exc)
            return EXIT_CONFIG
        if not taken:
            log.error(
                "another daemon already runs on %s: %s",
                self.db_path,
                describe_holder(self.instance_lock.holder()),
            )
            return EXIT_LOCKED
        try:
            # the schema is set up under the database lock: beside a `run` creating it, the
            # daemon waits for it instead of racing it
            self.store = Store.open(
                self.db_path, lock=self.lock, lock_timeout=self.settings.daemon.lock_timeout
            )
        except StorageError as exc:
            log.error("%s", exc)
            self.instance_lock.release()
            return EXIT_CONFIG
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig)
        self.scheduler = AsyncIOScheduler(timezone=self.settings.timezone)
        try:
            self._sync_jobs(None, self.settings)
            self.scheduler.start()
            self._state = "running"
            self._write_heartbeat()
            log.info(
                "daemon started: pid %d, %d source(s), database %s, heartbeat %s",
                os.getpid(),
                len(self.settings.enabled_sources),
                self.db_path,
                heartbeat_path(self.db_path),
                extra={"fields": {"event": "start", "pid": os.getpid()}},
            )
            self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())
            if self.settings.daemon.deliver == DELIVER_AFTER_CHECKS:
                self._request_delivery("start")  # what an earlier run left pending
            await self._stopping.wait()
            await self._shutdown()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            if self.scheduler.running:
                self.scheduler.shutdown(wait=False)
            if self._heartbeat_task is not None:
                self._heartbeat_task.cancel()
            self.lock.release()
            if self.store is not None:
                self.store.close()
                self.store = None
            if self._workers is not None:
                self._workers.close()
            self.instance_lock.release()
        return 0

    def _on_signal(self, sig: signal.Signals) -> None:
        if sig == signal.SIGHUP:
            if self._stopping.is_set():
                return
            self._reload_task = asyncio.create_task(self._reload())
            return
        if self._stopping.is_set():
            log.warning("second %s: stopping now, abandoning in-flight work", sig.name)
            self._force.set()
            return
        log.info("%s: stopping; no new checks", sig.name, extra={"fields": {"event": "stopping"}})
        self._stopping.set()

    async def _shutdown(self) -> None:
        self._state = "stopping"
        grace = self.settings.daemon.grace_period
        self.scheduler.pause()
        if self._forming_task is not None:  # queued but not started: dropped
            self._forming_task.cancel()
            self._forming_task = None
            self._resolve(self._forming)
            self._forming = []
        self._write_heartbeat()
        deadline = asyncio.get_running_loop().time() + grace
        busy: set[asyncio.Task[None]] = set(self._batches)
        if self._delivery_task is not None and not self._delivery_task.done():
            busy.add(self._delivery_task)
        if busy:
            log.info(
                "waiting up to %g s for %d in-flight check(s): %s",
                grace,
                len(self._in_flight),
                ", ".join(sorted(self._in_flight)) or "-",
            )
            await self._wait(busy, grace)
        remaining = deadline - asyncio.get_running_loop().time()
        if self._deliver_owed:
            if remaining > 0 and not self._force.is_set():
                task = self._request_delivery("shutdown")
                if task is not None:
                    await self._wait({task}, remaining)
            if self._deliver_owed or (
                self._delivery_task is not None and not self._delivery_task.done()
            ):
                log.warning("reports not delivered before stopping stay pending in the database")
        self._state = "stopped"
        self._write_heartbeat()
        await asyncio.sleep(0)  # let the jobs whose checks were settled return
        log.info("daemon stopped", extra={"fields": {"event": "stopped"}})

    async def _wait(self, tasks: set[asyncio.Task[None]], timeout: float) -> None:
        """Wait for ``tasks`` up to ``timeout`` s or a second signal; cancel what is left."""
        force = asyncio.create_task(self._force.wait())
        try:
            pending = set(tasks)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + max(timeout, 0.0)
            while pending and not self._force.is_set():
                left = deadline - loop.time()
                if left <= 0:
                    break
                await asyncio.wait(
                    {*pending, force}, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
                pending = {t for t in pending if not t.done()}
        finally:
            force.cancel()
        if pending:
            log.warning("grace period over: abandoning %d task(s)", len(pending))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- jobs -----------------------------------------------------------------------------

    def _sync_jobs(self, old: Settings | None, new: Settings) -> tuple[list[str], list[str]]:
        """Make the jobs match ``new``: (added or rescheduled ids, removed ids)."""
        everything = old is None or old.daemon != new.daemon or old.timezone != new.timezone
        wanted = {s.id: s for s in new.enabled_sources}
        existing = {
            job.id.removeprefix("check:"): job
            for job in self.scheduler.get_jobs()
            if job.id.startswith("check:")
        }
        removed = sorted(set(existing) - set(wanted))
        for source_id in removed:
            self.scheduler.remove_job(f"check:{source_id}")
            self._triggers.pop(source_id, None)
        old_sources = {s.id: s for s in old.enabled_sources} if old is not None else {}
        changed = [
            s
            for s in wanted.values()
            if everything
            or s.id not in existing
            or old_sources.get(s.id) is None
            or old_sources[s.id].schedule != s.schedule
        ]
        if changed:
            assert self.store is not None
            now = utcnow()
            checked = last_checks(self.store)
            for src in changed:
                self._add_job(new, src, checked.get(src.id), now)
        self._sync_delivery_job(old, new)
        return [s.id for s in changed], removed

    def _add_job(
        self, settings: Settings, src: Source, last_check: datetime | None, now: datetime
    ) -> None:
        tz = settings.timezone
        jitter = effective_jitter(src.schedule, settings.daemon.jitter, tz)
        trigger = JitterTrigger(src.schedule.trigger(tz), jitter)
        due = next_due(src.schedule, last_check, now, tz)
        first = now if due <= now else trigger.jittered(due)
        self._triggers[src.id] = trigger
        self.scheduler.add_job(
            self._job,
            trigger=trigger,
            args=[src.id],
            id=f"check:{src.id}",
            name=f"check {src.id}",
            replace_existing=True,
            next_run_time=first,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(max(1, settings.daemon.misfire_grace_time)),
        )
        log.debug(
            "%s: schedule %s, jitter <= %g s, first run %s%s",
            src.id,
            src.schedule.text,
            jitter,
            format_time(first),
            " (overdue)" if due <= now else "",
        )

    def _sync_delivery_job(self, old: Settings | None, new: Settings) -> None:
        if old is not None and (old.daemon.deliver, old.timezone) == (
            new.daemon.deliver,
            new.timezone,
        ):
            return
        if self.scheduler.get_job("deliver") is not None:
            self.scheduler.remove_job("deliver")
        schedule = new.daemon.deliver_schedule
        if schedule is None:
            return
        self.scheduler.add_job(
            self._deliver_job,
            trigger=schedule.trigger(new.timezone),
            id="deliver",
            name="deliver",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(max(1, new.daemon.misfire_grace_time)),
        )

    async def _job(self, source_id: str) -> None:
        # cancelled only by the scheduler's shutdown, after the checks were settled
        with contextlib.suppress(asyncio.CancelledError):
            await self.request_checks([source_id])

    async def _deliver_job(self) -> None:
        task = self._request_delivery("schedule")
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    # -- batches --------------------------------------------------------------------------

    async def request_checks(self, source_ids: Sequence[str]) -> None:
        """Queue these sources for the next batch; return when their checks are done."""
        if self._stopping.is_set():
            return
        loop = asyncio.get_running_loop()
        futures = []
        for source_id in source_ids:
            future = self._in_flight.get(source_id)
            if future is None:
                future = loop.create_future()
                self._in_flight[source_id] = future
                self._forming.append(source_id)
            futures.append(future)
        if self._forming and self._forming_task is None:
            self._forming_task = asyncio.create_task(self._start_batch())
        await asyncio.gather(*(asyncio.shield(f) for f in futures))

    async def _start_batch(self) -> None:
        await asyncio.sleep(BATCH_WINDOW)
        ids, self._forming, self._forming_task = self._forming, [], None
        task = asyncio.create_task(self._batch(ids))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    def _resolve(self, ids: Iterable[str]) -> None:
        for source_id in ids:
            future = self._in_flight.pop(source_id, None)
            if future is not None and not future.done():
                future.set_result(None)

    async def _batch(self, ids: list[str]) -> None:
        from pawatch.pipeline import CPU_WORKERS, check_sources

        done: set[str] = set()
        events = 0

        def on_outcome(outcome: CheckOutcome) -> None:
            nonlocal events
            done.add(outcome.source_id)
            events += len(outcome.event_ids)
            self._on_outcome(outcome)

        try:
            async with self._db_lock() as waited_since:
                assert self.store is not None
                known = {s.id: s for s in self.settings.enabled_sources}
                sources = [known[i] for i in ids if i in known]
                if waited_since is not None and sources:
                    # a cron `pawatch run` held the lock: skip what it checked meanwhile
                    checked = last_checks(self.store)
                    since = waited_since.replace(microsecond=0)
                    fresh = [s.id for s in sources if s.id in checked and checked[s.id] >= since]
                    if fresh:
                        log.info("already checked by another run meanwhile: %s", ", ".join(fresh))
                        sources = [s for s in sources if s.id not in fresh]
                if sources:
                    if self._workers is None:
                        self._workers = WorkerPool(CPU_WORKERS, self.settings.http.parse_timeout)
                    self._workers.timeout = self.settings.http.parse_timeout  # after a reload
                    await check_sources(
                        self.settings,
                        sources,
                        self.store,
                        on_outcome=on_outcome,
                        pool=self._workers,
                    )
        except LockTimeout as exc:
            self._error(f"checks of {', '.join(ids)} skipped: the database stayed busy: {exc}")
        except asyncio.CancelledError:
            lost = sorted(set(ids) - done)
            if lost:
                log.warning(
                    "abandoned in-flight check(s) of %s: not recorded; they are overdue at the "
                    "next start",
                    ", ".join(lost),
                    extra={"fields": {"event": "abandoned", "sources": lost}},
                )
            raise
        except Exception as exc:
            log.exception("checks of %s failed", ", ".join(ids))
            self._error(f"checks of {', '.join(ids)} failed: {type(exc).__name__}: {exc}")
        finally:
            self._resolve(ids)
            self._write_heartbeat()
        if events and self.settings.daemon.deliver == DELIVER_AFTER_CHECKS:
            self._request_delivery("after-checks")
        feed = self.settings.feed.path
        if feed and self.store is not None and (events or not os.path.exists(feed)):
            try:  # the feed, rewritten after a cycle with changes
                update_feed_file(self.settings, self.store)
            except Exception:
                log.exception("the feed could not be written")

    def _on_outcome(self, outcome: CheckOutcome) -> None:
        duration = round(outcome.duration, 3)
        now = utcnow()
        self.last_checks[outcome.source_id] = {
            "at": format_time(now),
            "outcome": outcome.outcome,
            "events": len(outcome.event_ids),
        }
        fields = {
            "event": "check",
            "source": outcome.source_id,
            "outcome": outcome.outcome,
            "duration": duration,
            "events": len(outcome.event_ids),
        }
        took = f" in {duration:.2f} s" if duration is not None else ""
        if outcome.outcome == "failed":
            fields["error"] = outcome.error
            fields["error_kind"] = outcome.error_kind
            log.warning(
                "check %s: FAILED (%s)%s: %s",
                outcome.source_id,
                outcome.error_kind,
                took,
                outcome.error,
                extra={"fields": fields},
            )
            self.last_error = {
                "time": format_time(now),
                "source": outcome.source_id,
                "message": f"{outcome.error_kind}: {outcome.error}",
            }
        else:
            log.info(
                "check %s: %s%s, %d event(s)",
                outcome.source_id,
                outcome.outcome,
                took,
                len(outcome.event_ids),
                extra={"fields": fields},
            )
        self._write_heartbeat()

    def _error(self, message: str) -> None:
        log.error("%s", message, extra={"fields": {"event": "error"}})
        self.last_error = {"time": format_time(utcnow()), "source": None, "message": message}
        self._write_heartbeat()

    @contextlib.asynccontextmanager
    async def _db_lock(self) -> AsyncIterator[datetime | None]:
        """Hold the database lock (shared by this process's batches and deliveries).

        Yields None when the lock was free, else the moment the wait began.
        """
        waited: datetime | None = None
        async with self._lock_guard:
            if self._lock_holders == 0 and not self.lock.try_acquire():
                waited = utcnow()
                timeout = self.settings.daemon.lock_timeout
                log.info(
                    "database busy (%s); waiting up to %g s",
                    describe_holder(self.lock.holder()),
                    timeout,
                )
                await self.lock.acquire_async(timeout)
            self._lock_holders += 1
        try:
            yield waited
        finally:
            self._lock_holders -= 1
            if self._lock_holders == 0:
                self.lock.release()

    # -- delivery -------------------------------------------------------------------------

    def _request_delivery(self, reason: str) -> asyncio.Task[None] | None:
        """Deliver pending reports now (or right after the delivery already running)."""
        if self.settings.daemon.deliver == DELIVER_OFF:
            return None
        self._deliver_owed = True
        if self._delivery_task is None or self._delivery_task.done():
            self._delivery_task = asyncio.create_task(self._deliver(reason))
        return self._delivery_task

    async def _deliver(self, reason: str) -> None:
        while self._deliver_owed:
            self._deliver_owed = False
            settings = self.settings
            try:
                async with self._db_lock():
                    result = await asyncio.to_thread(_deliver_sync, settings)
            except LockTimeout as exc:
                self._error(f"delivery skipped: the database stayed busy: {exc}")
                return
            except Exception as exc:
                log.exception("delivery failed")
                self._error(f"delivery failed: {type(exc).__name__}: {exc}")
                return
            self._log_delivery(reason, result)

    def _log_delivery(self, reason: str, result: DeliveryResult) -> None:
        summary = getattr(result, "summary_lines", None)
        lines = [str(x) for x in summary()] if callable(summary) else [str(result)]
        fields = {
            "event": "delivery",
            "reason": reason,
            "pending": getattr(result, "pending", None),
        }
        if not lines:
            log.debug("delivery (%s): nothing pending", reason, extra={"fields": fields})
        for line in lines:
            log.info("delivery (%s): %s", reason, line, extra={"fields": fields})
        if getattr(result, "ok", True) is False:
            self._error(f"delivery ({reason}) failed: {'; '.join(lines)}")

    # -- reload ---------------------------------------------------------------------------

    async def _reload(self) -> None:
        try:
            new = await asyncio.to_thread(self._load)
        except ConfigError as exc:
            self._error(f"SIGHUP: config error: {exc}; keeping the previous configuration")
            return
        except Exception as exc:
            self._error(
                f"SIGHUP: cannot reload the config: {type(exc).__name__}: {exc}; "
                "keeping the previous configuration"
            )
            return
        if self._stopping.is_set():
            return
        old = self.settings
        if new.storage.path != old.storage.path:
            log.warning(
                "SIGHUP: storage.path changed to %s; restart the daemon to switch databases "
                "(still using %s)",
                new.storage.path,
                old.storage.path,
            )
            new = replace(new, storage=old.storage)
        self.settings = new
        try:
            changed, removed = self._sync_jobs(old, new)
        except Exception as exc:  # e.g. a schedule APScheduler refuses
            log.exception("SIGHUP: applying the new config failed")
            self.settings = old
            self._error(f"SIGHUP: cannot apply the new config: {exc}; keeping the previous one")
            with contextlib.suppress(Exception):
                self._sync_jobs(None, old)
            return
        log.info(
            "SIGHUP: config reloaded: %d source(s); added or rescheduled: %s; removed: %s",
            len(new.enabled_sources),
            ", ".join(changed) or "-",
            ", ".join(removed) or "-",
            extra={"fields": {"event": "reload", "changed": changed, "removed": removed}},
        )
        self._write_heartbeat()

    # -- heartbeat ------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.daemon.heartbeat_interval)
            self._write_heartbeat()

    def heartbeat(self) -> dict[str, Any]:
        jobs = {}
        deliver_next = None
        if self.scheduler is not None:
            for job in self.scheduler.get_jobs():
                when = getattr(job, "next_run_time", None)
                text = format_time(when) if when and self._state != "stopped" else None
                if job.id == "deliver":
                    deliver_next = text
                else:
                    jobs[job.id.removeprefix("check:")] = text
        sources = {}
        for src in self.settings.enabled_sources:
            last = self.last_checks.get(src.id, {})
            sources[src.id] = {
                "schedule": src.schedule.text,
                "next_run": jobs.get(src.id),
                "in_flight": src.id in self._in_flight,
                "last_check": last.get("at"),
                "last_outcome": last.get("outcome"),
            }
        now = utcnow()
        data: dict[str, Any] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "state": self._state,
            "started_at": format_time(self.started_at),
            "last_beat": format_time(now),
            "heartbeat_interval": self.settings.daemon.heartbeat_interval,
            "database": self.db_path,
            "config_files": list(self.settings.config_files),
            "timezone": self.settings.timezone,
            "deliver": {"mode": self.settings.daemon.deliver, "next_run": deliver_next},
            "sources": sources,
            "last_error": self.last_error,
        }
        if self._state == "stopped":
            data["stopped_at"] = format_time(now)
        return data

    def _write_heartbeat(self) -> None:
        path = heartbeat_path(self.db_path)
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(self.heartbeat(), fh, ensure_ascii=False, indent=1)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write the heartbeat file %s: %s", path, exc)


def _deliver_sync(settings: Settings) -> DeliveryResult:
    """Run ``deliver_pending`` in a worker thread with its own connection."""
    store = Store.open(settings.storage.path)
    try:
        return deliver_pending(settings, store)
    finally:
        store.close()


def run_daemon(settings: Settings, load: Callable[[], Settings]) -> int:
    """Run the daemon in a fresh event loop; its exit code."""
    return asyncio.run(Daemon(settings, load).run())
