"""What every command shares: the context (options, settings, database, writer lock), the exit
codes, the ``--format`` option, source selection, tables and the one-line failure."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from pawatch.display import printable

# The config, the storage and the lock are imported where they are used, not here: every
# command module imports this one, and `pawatch --help` or `--version` needs none of them.
if TYPE_CHECKING:
    from pawatch.config import Settings, Source
    from pawatch.storage import Store

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3  # the same as pawatch.lock.EXIT_LOCKED (tests/test_startup.py checks)


class Context:
    """What every command gets: the options, and the settings loaded once on demand."""

    def __init__(self, config: str | None, db: str | None, verbosity: int) -> None:
        self.config_path = config
        self.db_path = db
        self.verbosity = verbosity
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from pawatch.config import ConfigError
            from pawatch.settings import load_settings

            try:
                self._settings = load_settings(self.config_path, db=self.db_path)
            except ConfigError as exc:
                fail(f"config error: {exc}")
        return self._settings

    @contextmanager
    def writing(self, store: Store, purpose: str, timeout: float | None = None) -> Iterator[None]:
        """Hold the database's single-writer lock (``<db>.lock``) for a writing command; exit 3
        with one line when another pawatch holds it for longer than ``timeout``."""
        from pawatch.lock import FileLock, LockTimeout

        wait = self.settings.daemon.lock_timeout if timeout is None else timeout
        lock = FileLock.for_database(store.path, purpose)
        try:
            lock.acquire(wait)
        except LockTimeout as exc:
            _busy(store.path, exc.describe(), wait)
        except OSError as exc:
            fail(f"cannot create the lock file {lock.path}: {exc.strerror}")
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def store(self, *, create: bool = True, wait: float | None = None) -> Iterator[Store]:
        """The database; with ``create=False`` (commands that only read) a missing file is a
        clear error instead of a new empty database.

        A new or older database is set up under the single-writer lock (waiting up to
        ``wait``, default ``[daemon] lock_timeout``, then exit 3); one written by a newer
        pawatch is refused with one line, exit 2, before anything is written."""
        from pawatch.lock import FileLock, describe_holder
        from pawatch.storage import StorageError, Store
        from pawatch.storage.store import SchemaBusy

        path = self.settings.storage.path
        if not create and not Path(path).exists():
            fail(f"no database at {path} yet: run `pawatch run` first, or give --db PATH")
        timeout = self.settings.daemon.lock_timeout if wait is None else wait
        lock = FileLock.for_database(path, "schema setup")
        try:
            store = Store.open(path, lock=lock, lock_timeout=timeout)
        except SchemaBusy:
            what = f"{lock.path} is held by {describe_holder(lock.holder())}"
            _busy(path, f"{what}; gave up after waiting {timeout:g} s", timeout)
        except OSError as exc:
            fail(f"cannot create the lock file {lock.path}: {exc.strerror}")
        except StorageError as exc:
            fail(str(exc))
        try:
            yield store
        finally:
            store.close()


def format_option(*choices: str, help: str) -> Callable[[Any], Any]:
    """The ``--format`` option every command shares; the first choice is the default."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=choices[0],
        show_default=True,
        help=help,
    )


def _busy(path: str, why: str, wait: float) -> NoReturn:
    fail(
        f"the database {path} is busy: {why} (--wait {wait:g}); nothing was done. "
        "Try again later or wait longer with --wait SECONDS.",
        EXIT_LOCKED,
    )


def echo(text: str) -> None:
    """One line of output that may hold scraped text: no control character of it reaches the
    terminal (``pawatch.display.printable``)."""
    click.echo(printable(text))


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"pawatch: {message}", err=True)
    sys.exit(code)


def select_sources(settings: Settings, ids: Sequence[str]) -> list[Source]:
    if not ids:
        return list(settings.enabled_sources)
    known = {s.id: s for s in settings.sources}
    unknown = [i for i in ids if i not in known]
    if unknown:
        fail(f"unknown source id(s): {', '.join(unknown)} (see `pawatch sources`)")
    return [known[i] for i in dict.fromkeys(ids)]  # named sources run even when disabled


def delegation_id(value: str) -> str:
    """A delegation id as stored, whatever its case: ``kg`` -> ``KG``, ``X-Foo`` -> ``x-foo``."""
    value = value.strip()
    return value.lower() if value.lower().startswith("x-") else value.upper()


def known_delegation(store: Store, value: str) -> str:
    """``value`` as a stored delegation id; exit 2 naming the known ones when no source
    reports about it (nothing in the registry, the facts or the events)."""
    from pawatch.config.registry import load_registry

    wanted = delegation_id(value)
    recorded = store.reported_delegations()
    if wanted in recorded or load_registry().has(wanted):
        return wanted
    fail(
        f"unknown delegation {value!r}; known: {', '.join(sorted(recorded)) or 'none yet'} "
        "(ids are the registry's two-letter codes, e.g. KG, or x-<slug>)"
    )


def format_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
