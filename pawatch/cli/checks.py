"""The checking commands: ``run``, ``status``, ``sources`` and ``demo``."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pawatch.cli.common import (
    EXIT_FAILURES,
    EXIT_OK,
    Context,
    fail,
    format_option,
    format_table,
    select_sources,
)
from pawatch.display import one_line, printable, redact_secrets, redact_url

if TYPE_CHECKING:  # the storage is imported by the commands that use it (start-up time)
    from pawatch.config import Settings
    from pawatch.storage import CheckOutcome, Store

log = logging.getLogger("pawatch")


def _safe(text: object) -> str:
    """A message that may quote a page or a URL, for one terminal line: no control characters,
    no URL password, at most a few hundred characters."""
    return one_line(redact_secrets(str(text)))


def _describe(outcome: CheckOutcome) -> str:
    if outcome.outcome == "failed":
        return f"{outcome.source_id}: FAILED ({outcome.error_kind}) {outcome.error}"
    extra = f", {len(outcome.event_ids)} event(s)" if outcome.event_ids else ""
    line = f"{outcome.source_id}: {outcome.outcome} (snapshot {outcome.snapshot_id}{extra})"
    if outcome.degraded:
        line = f"{line}; DEGRADED: {outcome.degraded}"
    return f"{line}; BROKEN: {outcome.parse_error}" if outcome.broken else line


@contextmanager
def _progress(total: int) -> Iterator[Callable[[CheckOutcome], None]]:
    """A progress bar on a terminal; one log line per check otherwise (cron, pipes)."""
    if sys.stderr.isatty() and total > 1:
        with click.progressbar(length=total, label="checking", file=sys.stderr) as bar:

            def tick(outcome: CheckOutcome) -> None:
                bar.update(1)
                if outcome.outcome == "failed":
                    log.debug(_describe(outcome))

            yield tick
    else:

        def line(outcome: CheckOutcome) -> None:
            (log.warning if outcome.outcome == "failed" or outcome.broken else log.info)(
                _describe(outcome)
            )

        yield line


def _finite(value: float | None) -> float | None:
    """A FloatRange lets nan through (every comparison with nan is false)."""
    if value is not None and value != value:
        raise click.BadParameter("expected a number of seconds, got nan")
    return value


@click.command()
@click.option(
    "--source",
    "source_ids",
    multiple=True,
    metavar="ID",
    help="Check only this source (repeatable); named sources run even if disabled.",
)
@format_option("text", "json", help="Summary format on stdout.")
@click.option(
    "--due",
    is_flag=True,
    help="Check only the sources whose schedule says they are due (by their last check in "
    "the database): for a crontab line every few minutes.",
)
@click.option(
    "--wait",
    "wait",
    type=click.FloatRange(min=0, max=86400),
    callback=lambda _ctx, _param, value: _finite(value),
    default=None,
    metavar="SECONDS",
    help="How long to wait for the database lock held by a daemon or another run, then exit "
    "3 (default: [daemon] lock_timeout, 300).",
)
@click.option(
    "--no-deliver",
    "no_deliver",
    is_flag=True,
    help="Do not deliver the pending changes after checking (see `pawatch deliver`).",
)
@click.pass_obj
def run(
    obj: Context,
    source_ids: tuple[str, ...],
    fmt: str,
    due: bool,
    wait: float | None,
    no_deliver: bool,
) -> None:
    """Check the enabled sources once and print a summary.

    Only one pawatch writes to a database at a time: while a daemon or another run holds
    the lock, this run waits up to --wait seconds, then exits 3 without checking anything.
    With --due, sources are picked after the lock is taken, so a source just checked by the
    daemon is not checked again.

    Then the pending changes are delivered (by email with an [email] table, else the report
    is printed after the summary; on stderr with --format json), unless --no-deliver.

    Exit code 0 when every check succeeded (or nothing was due), 1 when some source failed
    (the others are still checked and stored) or a delivery failed (its events stay pending),
    2 on a usage or config error, 3 when the database stayed locked.
    """
    from datetime import UTC, datetime

    from pawatch.pipeline import RunSummary, run_once
    from pawatch.storage import StorageError

    settings = obj.settings
    sources = select_sources(settings, source_ids)
    if not sources:
        fail("no enabled sources to check")
    with obj.store(wait=wait) as store, obj.writing(store, "run --due" if due else "run", wait):
        now = datetime.now(UTC)
        if due:
            from pawatch.schedules import due_sources, last_checks

            sources = due_sources(sources, last_checks(store), now, settings.timezone)
        if sources:
            try:
                with _progress(len(sources)) as on_outcome:
                    summary = run_once(settings, sources, store, on_outcome=on_outcome)
            except (StorageError, sqlite3.Error) as exc:
                fail(f"database error, the checks recorded so far are kept: {exc}", EXIT_FAILURES)
        else:
            log.info("no source is due; nothing to check")
            summary = RunSummary(started_at=now, finished_at=now)
        report, delivery_code = ("", 0) if no_deliver else _deliver(settings, store)
        if settings.feed.path:
            from pawatch.feed import update_feed_file

            update_feed_file(settings, store)
    if fmt == "json":
        click.echo(json.dumps(summary.as_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(_summary_text(summary.as_json(), store.path))
    if report:
        click.echo(report, nl=False, err=fmt == "json")
    sys.exit(max(summary.exit_code, delivery_code))


def _deliver(settings: Settings, store: Store) -> tuple[str, int]:
    """Deliver what is pending; return the report printed in stdout mode, and an exit code."""
    from pawatch.delivery import deliver_pending

    buffer = io.StringIO()
    result = deliver_pending(settings, store, out=buffer)
    for line in result.summary_lines():
        log.info(line)
    return buffer.getvalue(), result.exit_code


def _summary_text(data: dict[str, Any], db_path: str) -> str:
    counts = data["counts"]
    lines = [
        f"Checked {data['checked']} source(s): {counts['new']} new, {counts['changed']} changed, "
        f"{counts['unchanged'] + counts['not_modified']} unchanged, {counts['failed']} failed; "
        f"{data['events']} event(s).",
    ]
    for name in ("new", "changed"):
        if data["sources"][name]:
            lines.append(f"  {name}: {', '.join(data['sources'][name])}")
    for source_id, error in sorted(data["errors"].items()):
        lines.append(f"  failed: {source_id}: {_safe(error)}")
    for source_id, error in sorted(data["broken"].items()):
        lines.append(f"  broken: {source_id}: {_safe(error)}")
    for source_id, error in sorted(data.get("degraded", {}).items()):
        lines.append(f"  degraded: {source_id}: {_safe(error)}")
    lines.append(f"Database: {db_path}")
    return "\n".join(lines)


@click.command()
@format_option("text", "json", help="Output format.")
@click.option(
    "--daemon",
    "daemon_only",
    is_flag=True,
    help="Only the daemon's heartbeat; exit 0 when the daemon is alive, 1 when it is not.",
)
@click.pass_obj
def status(obj: Context, fmt: str, daemon_only: bool) -> None:
    """Each source's last check, last success, consecutive failures, last error, last change
    and snapshot count, from the database; and the daemon: alive or not, since when, the next
    run per source and its last error (from the heartbeat file <db>.daemon.json).

    Exit 1 when a source's last check failed or its page cannot be read (broken), so it can
    serve as a health check; 0 otherwise."""
    from pawatch.heartbeat import read_heartbeat

    beat = read_heartbeat(obj.settings.storage.path)
    alive = bool(beat and beat.get("alive"))
    if daemon_only:
        if fmt == "json":
            click.echo(json.dumps(beat or {"alive": False, "state": "never"}, indent=2))
        else:
            click.echo("\n".join(_daemon_lines(beat, obj.settings.storage.path, [])))
        sys.exit(EXIT_OK if alive else EXIT_FAILURES)
    rows = []
    undelivered = None
    if Path(obj.settings.storage.path).exists():  # a status question creates no database
        with obj.store() as store:
            rows = store.statuses()
            undelivered = store.outbox.failed()
    next_runs: dict[str, Any] = {}
    if beat and alive:
        next_runs = {k: v.get("next_run") for k, v in (beat.get("sources") or {}).items()}
    # exit 1 when a source's last check failed or its page cannot be read: a health check
    unhealthy = [r.id for r in rows if r.consecutive_failures or r.parse_status == "broken"]
    code = EXIT_FAILURES if unhealthy else EXIT_OK
    if fmt == "json":
        sources = [
            {**r.__dict__, "url": redact_url(r.url), "next_run": next_runs.get(r.id)} for r in rows
        ]
        daemon = beat or {"alive": False, "state": "never"}
        data = {"ok": not unhealthy, "unhealthy": unhealthy, "sources": sources, "daemon": daemon}
        data["delivery"] = {  # outbox rows that will not be sent again without a person
            "failed": undelivered.count if undelivered else 0,
            "last_error": undelivered.last_error if undelivered else None,
            "last_error_at": undelivered.last_at if undelivered else None,
        }
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        sys.exit(code)
    if not rows:
        click.echo("No checks recorded yet; run `pawatch run` or `pawatch daemon`.")
    else:
        header = ("SOURCE", "LAST CHECK", "OUTCOME", "PARSE", "LAST SUCCESS", "FAILS")
        table: list[Sequence[str]] = [(*header, "LAST CHANGE", "SNAPS")]
        table += [
            (
                r.id,
                r.last_check or "-",
                r.last_outcome or "-",
                r.parse_status or "-",
                r.last_success or "-",
                str(r.consecutive_failures),
                r.last_change or "-",
                str(r.snapshots),
            )
            for r in rows
        ]
        if alive:
            table = [(*table[0], "NEXT RUN")] + [
                (*row, next_runs.get(row[0]) or "-") for row in table[1:]
            ]
        click.echo(format_table(table))
        for r in rows:
            if r.consecutive_failures and r.last_error:
                click.echo(f"! {r.id}: {_safe(r.last_error)}")
            if r.parse_status == "broken":
                click.echo(f"! {r.id}: cannot read the page: {_safe(r.parse_error)}")
            if r.parse_status == "degraded":
                click.echo(
                    f"! {r.id}: part of the page unreadable (facts held): {_safe(r.parse_error)}"
                )
            if r.final_url:
                click.echo(f"! {r.id}: redirected to {_safe(redact_url(r.final_url))}")
    if undelivered is not None and undelivered.count:
        click.echo(
            f"! delivery: {undelivered.count} outbox row(s) FAILED and will not be sent again "
            f"(last at {undelivered.last_at}): {_safe(undelivered.last_error)}"
        )
    click.echo("\n".join(_daemon_lines(beat, obj.settings.storage.path, [r.id for r in rows])))
    sys.exit(code)


def _daemon_lines(beat: dict[str, Any] | None, db_path: str, listed: Sequence[str]) -> list[str]:
    """The daemon part of `pawatch status`: alive or not, since when, next runs, last error."""
    if beat is None:
        return [f"Daemon: not running (no heartbeat file {db_path}.daemon.json)"]
    if beat.get("state") == "unreadable":
        return [f"Daemon: unknown (heartbeat file unreadable: {beat.get('error')})"]
    age = beat.get("beat_age")
    ago = f"{age:.0f} s ago" if isinstance(age, int | float) else "unknown"
    where = f"pid {beat.get('pid')} on {beat.get('host')}"
    if beat.get("alive"):
        state = "stopping" if beat.get("state") == "stopping" else "running"
        lines = [
            f"Daemon: {state}, {where}, since {beat.get('started_at')} "
            f"(last beat {ago}; deliver: {(beat.get('deliver') or {}).get('mode', '-')})"
        ]
        unlisted = {
            k: v.get("next_run") for k, v in (beat.get("sources") or {}).items() if k not in listed
        }
        if unlisted:
            lines.append(
                "  next run: " + ", ".join(f"{k} {v or '-'}" for k, v in sorted(unlisted.items()))
            )
    elif beat.get("state") == "stopped":
        lines = [
            f"Daemon: not running (stopped cleanly at {beat.get('stopped_at')}; "
            f"was {where} since {beat.get('started_at')})"
        ]
    else:
        lines = [
            f"Daemon: NOT RESPONDING (last beat {beat.get('last_beat')}, {ago}; "
            f"was {where} since {beat.get('started_at')})"
        ]
    error = beat.get("last_error")
    if isinstance(error, dict):
        source = f"{error.get('source')}: " if error.get("source") else ""
        lines.append(f"  last error: {error.get('time')} {source}{_safe(error.get('message'))}")
    return lines


@click.command()
@format_option("text", "json", help="Output format.")
@click.pass_obj
def sources(obj: Context, fmt: str) -> None:
    """List the configured sources (after validation) and where the config came from."""
    settings = obj.settings
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "id": s.id,
                        "url": redact_url(s.url),
                        "parser": s.parser,
                        "delegation": s.delegation,
                        "schedule": s.schedule.text,
                        "enabled": s.enabled,
                    }
                    for s in settings.sources
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    table = [("ID", "PARSER", "DELEG", "SCHEDULE", "ON", "URL")] + [
        (
            s.id,
            s.parser,
            s.delegation or "-",
            s.schedule.text,
            "yes" if s.enabled else "no",
            printable(redact_url(s.url)),
        )
        for s in settings.sources
    ]
    click.echo(format_table(table))
    click.echo(
        f"{len(settings.sources)} source(s), {len(settings.enabled_sources)} enabled; "
        f"config: {' + '.join(settings.config_files)}; database: "
        f"{settings.storage.path}"
    )


@click.command()
@click.option(
    "--dir",
    "out_dir",
    metavar="DIR",
    default="demo-output",
    show_default=True,
    help="Folder for the demo database and files.",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Keep the example sites and a local SMTP server up until Ctrl-C, to try other "
    "commands on them with the config the demo prints.",
)
@click.pass_obj
def demo(obj: Context, out_dir: str, serve: bool) -> None:
    """Run pawatch offline against a bundled example site served on 127.0.0.1.

    Checks version 1 of the site (recorded as a week ago), switches to version 2, checks
    again, and shows what changed and where the database is.
    """
    from pawatch.demo.run import run_demo

    sys.exit(run_demo(out_dir, serve=serve))
