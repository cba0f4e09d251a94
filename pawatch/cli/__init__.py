"""The ``pawatch`` command line. Every command has help; ``pawatch COMMAND --help``.

The group and its global options live here; the commands live in their own modules (``checks``,
``query``, ``delivery``, ``daemon``) and share ``common``. Imports run one way: this module
imports the command modules, which import ``common``; nothing imports this module back.
"""

from __future__ import annotations

import logging
import sys

import click

from pawatch.cli import checks, daemon, delivery, feed, query, trying, web
from pawatch.cli.common import Context
from pawatch.display import SafeLogFilter


def _setup_logging(verbosity: int) -> None:
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(SafeLogFilter())  # no URL password, no control characters in logs
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger("pawatch")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


GLOBAL_OPTIONS = ("--config", "--db", "-v", "--verbose", "-q", "--quiet")


class _Group(click.Group):
    """The group; an option of the group given after the command gets a hint saying where it
    goes (``pawatch changes --db X`` -> ``pawatch --db X changes``)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.NoSuchOption as exc:
            if exc.option_name not in GLOBAL_OPTIONS:
                raise
            command = exc.ctx.info_name if exc.ctx is not None else "COMMAND"
            raise click.UsageError(
                f"{exc.option_name} is a global option: give it before the command, "
                f"e.g. `pawatch {exc.option_name} ... {command} ...`",
                exc.ctx,
            ) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    metavar="PATH",
    envvar="PAWATCH_CONFIG",
    help="TOML config file over the bundled default (also $PAWATCH_CONFIG).",
)
@click.option(
    "--db",
    "db",
    metavar="PATH",
    envvar="PAWATCH_DB",
    help="SQLite database file (also $PAWATCH_DB); overrides [storage] path.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v: debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.version_option(package_name="pawatch")
@click.pass_context
def cli(ctx: click.Context, config: str | None, db: str | None, verbose: int, quiet: bool) -> None:
    """pawatch: monitor the national delegations to the CSTO Parliamentary Assembly.

    Exit codes: 0 success, 1 some sources failed, 2 usage or config error, 3 the database
    is locked by another pawatch (daemon or run) for longer than `run --wait`.
    """
    verbosity = -1 if quiet else verbose
    _setup_logging(verbosity)
    ctx.obj = Context(config, db, verbosity)


for _module in (checks, query, delivery, daemon, feed, trying, web):
    for _command in vars(_module).values():
        if isinstance(_command, click.Command):
            cli.add_command(_command)


def main() -> None:
    cli(prog_name="pawatch")
