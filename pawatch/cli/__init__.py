"""The ``pawatch`` command line. Every command has help; ``pawatch COMMAND --help``.

The group and its global options live here; the commands live in their own modules (``checks``,
``query``, ``delivery``, ``daemon``, ...) and share ``common``. ``COMMANDS`` is the one place a
command is named: the group imports a command's module only when that command is asked for
(click's lazy-loading pattern), so ``pawatch run`` does not pay for ``serve``, ``try`` or the
queries; ``pawatch --help`` imports them all for their short help. Imports run one way: this
module imports the command modules, which import ``common``; nothing imports this module back.
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys

import click

from pawatch.cli.common import Context
from pawatch.display import SafeLogFilter

# Every command: its name -> "module:attribute" of its click.Command. A new command is added
# here (tests/test_startup.py checks this table against the click commands the modules define).
COMMANDS: dict[str, str] = {
    "run": "pawatch.cli.checks:run",
    "status": "pawatch.cli.checks:status",
    "sources": "pawatch.cli.checks:sources",
    "demo": "pawatch.cli.checks:demo",
    "changes": "pawatch.cli.query:changes",
    "history": "pawatch.cli.query:history",
    "show": "pawatch.cli.query:show",
    "diff": "pawatch.cli.query:diff",
    "export": "pawatch.cli.query:export",
    "reparse": "pawatch.cli.query:reparse",
    "deliver": "pawatch.cli.delivery:deliver",
    "report": "pawatch.cli.delivery:report",
    "test-email": "pawatch.cli.delivery:test_email",
    "test-channel": "pawatch.cli.delivery:test_channel",
    "daemon": "pawatch.cli.daemon:daemon",
    "feed": "pawatch.cli.feed:feed",
    "try": "pawatch.cli.trying:try_",
    "serve": "pawatch.cli.web:serve",
}


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


def load_command(name: str) -> click.Command:
    """The command called ``name`` in ``COMMANDS``, its module imported now."""
    module, attribute = COMMANDS[name].split(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command) or command.name != name:
        raise TypeError(f"COMMANDS[{name!r}] = {COMMANDS[name]!r} is not the command {name!r}")
    return command


def all_commands() -> dict[str, click.Command]:
    """Every command by name, all their modules imported (help, docs checks, tests)."""
    return {name: load_command(name) for name in sorted(COMMANDS)}


class _Group(click.Group):
    """The group: commands come from ``COMMANDS``, imported when asked for; an option of the
    group given after the command gets a hint saying where it goes (``pawatch changes --db X``
    -> ``pawatch --db X changes``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        return load_command(cmd_name)

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


def main() -> None:
    try:
        cli(prog_name="pawatch")
    finally:
        # The process ends here: its objects need no last collection. Without this the
        # interpreter's final collection walks the whole heap: ~35 ms after a large run.
        gc.freeze()
