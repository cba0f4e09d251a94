"""Start-up: the command table is complete, and a command imports only what it needs.

Speed itself is measured by benchmarks (bench/README.md), never here: these tests check which
modules a real ``pawatch`` process imports, which does not depend on the machine's load."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import pawatch.cli
from pawatch.cli import COMMANDS, all_commands
from pawatch.demo.localserver import LocalServer, Route
from tests.conftest import source_block, write_config

ROOT = Path(__file__).resolve().parents[1]

# Prints, after the command ran (atexit), the names of the modules the process imported.
_LIST_MODULES = """
import atexit, json, sys
atexit.register(lambda: sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n"))
from pawatch.cli import main
sys.argv[0] = "pawatch"
main()
"""


def _pawatch_modules(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``pawatch ARGS`` in a fresh interpreter; its result and the modules it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAWATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", _LIST_MODULES, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    head, sep, modules = proc.stderr.rpartition("\nMODULES ")
    assert sep, proc.stderr
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout, head), set(
        json.loads(modules)
    )


def _command_modules() -> list[str]:
    """Every module of the pawatch.cli package but ``__main__`` (importing it runs the CLI)."""
    return [
        f"pawatch.cli.{info.name}"
        for info in pkgutil.iter_modules(pawatch.cli.__path__)
        if info.name != "__main__"
    ]


def test_the_command_table_names_every_click_command_the_modules_define() -> None:
    defined: dict[str, str] = {}
    for module_name in _command_modules():
        module = importlib.import_module(module_name)
        for attribute, value in vars(module).items():
            if isinstance(value, click.Command) and not isinstance(value, click.Group):
                assert value.callback is not None
                if value.callback.__module__ == module_name:  # defined here, not imported
                    assert value.name not in defined, f"two commands named {value.name!r}"
                    defined[value.name or ""] = f"{module_name}:{attribute}"
    assert "pawatch.cli.checks" in _command_modules() and "run" in defined  # the scan works
    assert defined == COMMANDS
    loaded = all_commands()
    assert sorted(loaded) == sorted(COMMANDS)
    assert all(command.name == name for name, command in loaded.items())


def test_help_lists_every_command_with_its_short_help() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "pawatch", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.split("\nCommands:\n", 1)[1].splitlines()
    rows = {line.split()[0]: line.split(None, 1)[1] for line in listed if line.strip()}
    assert sorted(rows) == sorted(COMMANDS)
    for name, command in all_commands().items():
        short = command.get_short_help_str(limit=1000)  # click cuts it to the terminal's width
        assert len(short) > 10, name
        assert short.startswith(rows[name].removesuffix("...")), name


def test_an_unknown_command_is_still_a_usage_error() -> None:
    proc, modules = _pawatch_modules("no-such-command")
    assert proc.returncode == 2 and "No such command 'no-such-command'" in proc.stderr
    assert not any(m.startswith("pawatch.cli.") and m != "pawatch.cli.common" for m in modules)


# Imported by no `pawatch run --no-deliver`: other commands, delivery, the daemon, the web UI.
NOT_FOR_RUN = (
    "pawatch.cli.query",
    "pawatch.cli.delivery",
    "pawatch.cli.daemon",
    "pawatch.cli.feed",
    "pawatch.cli.trying",
    "pawatch.cli.web",
    "pawatch.daemon",
    "pawatch.delivery",
    "pawatch.reports",
    "pawatch.mailer",
    "pawatch.channels",
    "pawatch.feed",
    "pawatch.heartbeat",
    "pawatch.demo",
    "apscheduler",
    "smtplib",
    "email.mime",
    "uvicorn",
    "datasette",
    "jinja2",
)


def test_run_without_delivery_imports_only_what_it_needs(
    tmp_path: Path, server: LocalServer
) -> None:
    server.set("/a", Route(body="<p>a</p>"))
    cfg = write_config(tmp_path, source_block("alpha", server.url("/a")))
    db = str(tmp_path / "run.db")
    proc, modules = _pawatch_modules(
        "--config", str(cfg), "--db", db, "run", "--no-deliver", "--format", "json"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["counts"]["new"] == 1
    assert {"pawatch.cli.checks", "pawatch.pipeline", "pawatch.storage.store"} <= modules
    loaded = sorted(m for m in modules if m.startswith(NOT_FOR_RUN))
    assert loaded == [], f"`pawatch run --no-deliver` imported {loaded}"


def test_help_and_version_import_no_command_work(tmp_path: Path) -> None:
    proc, modules = _pawatch_modules("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("pawatch, version ")
    assert not any(m.startswith("pawatch.cli.") and m != "pawatch.cli.common" for m in modules)
    for heavy in ("sqlite_utils", "pawatch.storage.store", "pawatch.scraper", "asyncio"):
        assert heavy not in modules, f"`pawatch --version` imported {heavy}"
    proc, modules = _pawatch_modules("--help")
    assert proc.returncode == 0 and "Commands:" in proc.stdout
    for heavy in ("sqlite_utils", "pawatch.storage.store", "pawatch.pipeline", "apscheduler"):
        assert heavy not in modules, f"`pawatch --help` imported {heavy}"


def test_the_cli_exit_code_for_a_locked_database_is_the_locks() -> None:
    from pawatch.cli.common import EXIT_LOCKED
    from pawatch.lock import EXIT_LOCKED as LOCK_EXIT_LOCKED

    assert EXIT_LOCKED == LOCK_EXIT_LOCKED == 3


def test_the_storage_package_imports_the_store_on_first_use() -> None:
    code = (
        "import sys\n"
        "from pawatch.storage import outbox\n"
        "print('pawatch.storage.store' in sys.modules, 'sqlite_utils' in sys.modules)\n"
        "import pawatch.storage\n"
        "from pawatch.storage import Store\n"
        "from pawatch.storage.store import Store as Real\n"
        "print(Store is Real, pawatch.storage.format_time.__module__)\n"
        "try:\n"
        "    pawatch.storage.Stroe\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "False False",
        "True pawatch.times",
        "module 'pawatch.storage' has no attribute 'Stroe'",
    ]


def test_the_cli_leaves_the_final_collection_out_when_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``main`` freezes every object as the process ends: the interpreter's last garbage
    collection then has nothing to walk (about 35 ms after a run of 1000 pages)."""
    import gc

    monkeypatch.setattr(sys, "argv", ["pawatch", "--version"])
    gc.unfreeze()
    try:
        with pytest.raises(SystemExit) as info:
            pawatch.cli.main()
        assert info.value.code == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
