"""The schema is set up under the single-writer lock: commands started together on a new
database all succeed, a daemon started beside a `run` keeps running, and a database written
by a newer pawatch is refused by every command before anything is written."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from pawatch.demo.localserver import LocalServer, Route
from pawatch.storage import SourceRow, Store
from pawatch.storage.schema import known_names
from tests.conftest import source_block, write_config
from tests.test_delivery import T0, add_events, composition

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAWATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def start(cfg: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pawatch.cli", "--config", str(cfg), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def schema_of(db: Path) -> tuple[list[str], set[str]]:
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    return names, tables


def config(tmp_path: Path, server: LocalServer, **daemon: float) -> Path:
    for name in ("a", "b"):
        server.set(f"/{name}", Route(body=f"<html><body><p>page {name}</p></body></html>"))
    cfg = write_config(
        tmp_path, source_block("a", server.url("/a")) + source_block("b", server.url("/b"))
    )
    if daemon:
        table = "".join(f"{k} = {v}\n" for k, v in daemon.items())
        text = cfg.read_text(encoding="utf-8").replace("[http]\n", f"[daemon]\n{table}[http]\n")
        cfg.write_text(text, encoding="utf-8")
    return cfg


def test_three_commands_at_once_on_a_new_database_all_succeed(
    tmp_path: Path, server: LocalServer
) -> None:
    for round_ in range(3):  # the race is short: a few rounds, each on a new database
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        cfg = config(folder, server)
        procs = [
            start(cfg, "run", "--no-deliver", "--source", "a"),
            start(cfg, "run", "--no-deliver", "--source", "b"),
            start(cfg, "run", "--no-deliver"),
        ]
        results = [finish(p) for p in procs]
        assert [code for code, _ in results] == [0, 0, 0], [err for _, err in results]
        names, tables = schema_of(folder / "pawatch.db")
        assert names == known_names()
        assert {"sources", "facts", "outbox", "meta", "source_health"} <= tables
        with sqlite3.connect(folder / "pawatch.db") as conn:
            assert conn.execute("SELECT COUNT(*) FROM fetch_log").fetchone()[0] == 4
            ids = "SELECT COUNT(*) FROM meta WHERE key = 'instance_id'"
            assert conn.execute(ids).fetchone()[0] == 1


def test_a_daemon_started_beside_a_run_keeps_running(tmp_path: Path, server: LocalServer) -> None:
    cfg = config(tmp_path, server, jitter=0, heartbeat_interval=0.5, grace_period=10)
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "pawatch.cli", "--config", str(cfg), "daemon"],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=_env(),
        cwd=ROOT,
    )
    try:
        run = start(cfg, "run", "--no-deliver")
        code, err = finish(run)
        assert code == 0, err
        deadline = time.monotonic() + 30
        beat = Path(f"{tmp_path / 'pawatch.db'}.daemon.json")
        while not beat.exists() and time.monotonic() < deadline and daemon.poll() is None:
            time.sleep(0.1)
        assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()
        assert beat.exists()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, (tmp_path / "daemon.log").read_text()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(5)
        log.close()
    assert schema_of(tmp_path / "pawatch.db")[0] == known_names()


def test_a_database_from_a_newer_pawatch_is_refused_and_left_untouched(
    tmp_path: Path, server: LocalServer
) -> None:
    cfg = config(tmp_path, server)
    db = tmp_path / "pawatch.db"
    with Store.open(db) as store:
        store.sync_sources([SourceRow("assembly", "https://pacsto.org/", "delegations", None)], T0)
        add_events(store, composition("KG"))
    with sqlite3.connect(db) as conn:  # what a newer version's migration leaves behind
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('pawatch', '0099_from_a_newer_pawatch', '2027-01-01')"
        )
    conn.close()
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    for command in (["run"], ["status"], ["changes"], ["deliver"], ["report"], ["daemon"]):
        code, err = finish(start(cfg, *command), timeout=60)
        assert code == 2, (command, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (command, err)
        assert "written by a newer pawatch" in lines[0]
        assert "0099_from_a_newer_pawatch" in lines[0]
        after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
        after = {k: v for k, v in after.items() if not k.endswith(".lock")}
        assert after == {k: v for k, v in before.items() if not k.endswith(".lock")}, command
    assert server.hits("/a") == 0
