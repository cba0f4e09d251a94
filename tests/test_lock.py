"""The single-writer lock (pawatch/lock.py) and how `pawatch run` honours it."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pawatch.demo.localserver import LocalServer, Route
from pawatch.lock import EXIT_LOCKED, FileLock, LockTimeout, describe_holder
from tests.conftest import source_block, write_config

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAWATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_second_holder_times_out_and_names_the_first(tmp_path: Path) -> None:
    first = FileLock.for_database(str(tmp_path / "x.db"), "daemon")
    second = FileLock.for_database(str(tmp_path / "x.db"), "run")
    assert first.path == str(tmp_path / "x.db.lock")
    first.acquire(0)
    started = time.monotonic()
    with pytest.raises(LockTimeout) as exc:
        second.acquire(0.3)
    assert 0.25 <= time.monotonic() - started < 1.5
    assert exc.value.holder is not None and exc.value.holder["pid"] == os.getpid()
    assert f"held by another pawatch (pid {os.getpid()}, daemon, since " in str(exc.value)
    assert "gave up after waiting 0.3 s" in str(exc.value)
    first.release()
    assert first.holder() is None  # emptied on release: no stale holder
    with second.hold(0):
        assert second.held and second.holder()["purpose"] == "run"  # type: ignore[index]
    assert not second.held
    assert describe_holder(None) == "another process"


def test_waiter_gets_the_lock_when_it_is_released(tmp_path: Path) -> None:
    first = FileLock(str(tmp_path / "db.lock"), "a")
    first.acquire(0)
    threading.Timer(0.3, first.release).start()
    started = time.monotonic()
    FileLock(str(tmp_path / "db.lock"), "b").acquire(5)
    assert 0.2 <= time.monotonic() - started < 2


def test_async_acquire_does_not_block_the_loop(tmp_path: Path) -> None:
    first = FileLock(str(tmp_path / "db.lock"))
    first.acquire(0)
    ticks = 0

    async def main() -> None:
        nonlocal ticks

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.02)

        task = asyncio.create_task(ticker())
        asyncio.get_running_loop().call_later(0.3, first.release)
        await FileLock(str(tmp_path / "db.lock")).acquire_async(3)
        with pytest.raises(LockTimeout):
            await FileLock(str(tmp_path / "db.lock")).acquire_async(0.1)
        task.cancel()

    asyncio.run(main())
    assert ticks >= 8


def test_a_killed_holder_never_leaves_a_stale_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pawatch.lock import FileLock; "
        "FileLock(sys.argv[1], 'crash').acquire(0); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "db.lock")],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        lock = FileLock(str(tmp_path / "db.lock"))
        assert not lock.try_acquire()
        assert lock.holder()["purpose"] == "crash"  # type: ignore[index]
        proc.kill()
        proc.wait(5)
        lock.acquire(2)  # the kernel dropped the dead process's lock
        lock.release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_run_waits_for_the_lock_or_exits_3(tmp_path: Path, server: LocalServer) -> None:
    server.set("/a", Route(body="<p>a</p>"))
    cfg = write_config(tmp_path, source_block("a", server.url("/a")))
    db = tmp_path / "pawatch.db"
    cmd = [sys.executable, "-m", "pawatch.cli", "--config", str(cfg), "run"]
    held = FileLock.for_database(str(db), "test")
    held.acquire(0)
    try:
        busy = subprocess.run(
            [*cmd, "--wait", "0.2"], capture_output=True, text=True, env=_env(), cwd=ROOT
        )
        assert busy.returncode == EXIT_LOCKED == 3, busy.stderr
        assert busy.stderr.startswith(f"pawatch: the database {db} is busy: {db}.lock is held")
        assert f"(pid {os.getpid()}, test, since" in busy.stderr and "--wait" in busy.stderr
        assert server.hits("/a") == 0
        threading.Timer(1.5, held.release).start()
        waited = subprocess.run(
            [*cmd, "--wait", "30", "--format", "json"],
            capture_output=True,
            text=True,
            env=_env(),
            cwd=ROOT,
        )
    finally:
        held.release()
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["checked"] == 1 and server.hits("/a") == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM fetch_log").fetchone()[0] == 1
