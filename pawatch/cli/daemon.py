"""``pawatch daemon``: registered on the main `cli` group (the work is in pawatch.daemon)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from pawatch.cli.common import Context

if TYPE_CHECKING:
    from pawatch.config import Settings


@click.command()
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr: human text, or one JSON object per line (journald, shippers).",
)
@click.pass_obj
def daemon(obj: Context, log_format: str) -> None:
    """Check each enabled source on its own schedule until stopped.

    Sources overdue according to the database are checked at once; the others when their
    schedule says, each run up to [daemon] jitter seconds late. Reports are delivered after
    checks that produced events, or on the [daemon] deliver schedule.

    SIGTERM or SIGINT: no new checks, in-flight ones get [daemon] grace_period seconds, then
    exit 0. SIGHUP: reload the config (a bad one is logged and the old one kept). The
    heartbeat file <db>.daemon.json feeds `pawatch status`. Exit codes: 0 stopped cleanly,
    2 config or database error, 3 another daemon already runs on this database.
    """
    from pawatch.daemon import run_daemon
    from pawatch.logs import setup_daemon_logging
    from pawatch.settings import load_settings

    settings = obj.settings  # a config error at start exits 2 here
    setup_daemon_logging(log_format)
    if not settings.enabled_sources:
        click.echo("pawatch: warning: no enabled sources; waiting for SIGHUP", err=True)

    def reload() -> Settings:
        return load_settings(obj.config_path, db=obj.db_path)

    sys.exit(run_daemon(settings, reload))
