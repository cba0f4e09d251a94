"""`pawatch daemon` as a user runs it: a subprocess with second-level schedules against the local
HTTP server; plus the scheduling helpers (jitter, due times) and the [daemon] config table."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from pawatch.config import ConfigError, Schedule, Source
from pawatch.demo.localserver import LocalServer, Route
from pawatch.heartbeat import heartbeat_path, read_heartbeat
from pawatch.schedules import JitterTrigger, due_sources, effective_jitter, next_due
from pawatch.settings import settings_from_text
from tests.conftest import source_block, write_config

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAWATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def pawatch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pawatch.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        cwd=ROOT,
    )


class DaemonProcess:
    """`python -m pawatch.cli --config CFG daemon` with stderr in a file (never a full pipe)."""

    def __init__(self, cfg: Path, *extra: str) -> None:
        self.log_path = cfg.parent / f"daemon-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pawatch.cli", "--config", str(cfg), "daemon", *extra],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=_env(),
            cwd=ROOT,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def wait_for(self, what: Callable[[], bool], timeout: float = 10, label: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if what():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {label or what}:\n{self.log}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


@pytest.fixture
def daemons() -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(cfg: Path, *extra: str) -> DaemonProcess:
        started.append(DaemonProcess(cfg, *extra))
        return started[-1]

    yield start
    for d in started:
        d.kill()


def _daemon_cfg(tmp_path: Path, sources: str, **daemon: object) -> Path:
    cfg = write_config(tmp_path, sources)
    table = {"jitter": 0, "heartbeat_interval": 0.5, "grace_period": 10, **daemon}
    lines = "".join(
        f"{k} = {json.dumps(v)}\n" if isinstance(v, str) else f"{k} = {v}\n"
        for k, v in table.items()
    )
    text = cfg.read_text(encoding="utf-8").replace("[http]\n", f"[daemon]\n{lines}[http]\n", 1)
    cfg.write_text(text, encoding="utf-8")
    return cfg


def _times(server: LocalServer, path: str) -> list[float]:
    return [r.time for r in server.requests if r.path == path]


def _fetch_rows(db: Path, source_id: str) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT started_at, outcome FROM fetch_log WHERE source_id = ? ORDER BY id",
            (source_id,),
        ).fetchall()


# ------------------------------------------------------------------ units: config, schedules


def test_daemon_table_defaults_and_strict_errors() -> None:
    settings = settings_from_text("")
    assert settings.daemon.jitter == 30 and settings.daemon.deliver == "after-checks"
    custom = settings_from_text(
        '[daemon]\njitter = 5\ndeliver = "0 9 * * mon-fri"\nlock_timeout = 0'
    )
    assert custom.daemon.jitter == 5.0 and custom.daemon.lock_timeout == 0.0
    assert custom.daemon.deliver_schedule is not None
    assert custom.daemon.deliver_schedule.cron == "0 9 * * mon-fri"
    bad = {
        "jitter = -1": "daemon.jitter: expected a number of seconds >= 0",
        "jitter = 99999": "daemon.jitter: expected a number of seconds >= 0 and <= 3600",
        "grace_period = true": "daemon.grace_period: expected a number of seconds",
        'deliver = "sometimes"': "daemon.deliver: expected 'after-checks', 'off', an interval",
        "heartbeat_interval = 0": "daemon.heartbeat_interval: expected a number of seconds >= 0.2",
        "pid_file = 'x'": "daemon.pid_file: unknown key; expected one of jitter",
    }
    for line, message in bad.items():
        with pytest.raises(ConfigError) as exc:
            settings_from_text(f"[daemon]\n{line}\n", "my.toml")
        assert str(exc.value).startswith(f"my.toml: {message}"), str(exc.value)
    with pytest.raises(ConfigError, match=r"my.toml: daemon: expected a \[daemon\] table"):
        settings_from_text("daemon = 3\n", "my.toml")


def test_jitter_is_bounded_and_does_not_drift() -> None:
    schedule = Schedule.parse("2s")
    assert effective_jitter(schedule, 30, "UTC") == 1.0  # half the interval at most
    assert effective_jitter(Schedule.parse("6h"), 30, "UTC") == 30
    assert effective_jitter(Schedule.parse("*/10 * * * *"), 900, "UTC") == 300
    trigger = JitterTrigger(schedule.trigger("UTC"), 0.5)
    fire = trigger.jittered(T0)
    offsets = []
    for k in range(1, 200):
        following = trigger.get_next_fire_time(fire, fire)
        assert following is not None
        fire = following
        offsets.append((fire - (T0 + timedelta(seconds=2 * k))).total_seconds())
    assert all(0 <= o <= 0.5 for o in offsets)
    assert 0.15 < sum(offsets) / len(offsets) < 0.35  # uniform, around the base grid: no drift
    assert len({round(o, 3) for o in offsets}) > 50


def test_next_due_and_due_sources_for_intervals_and_cron() -> None:
    hourly = Schedule.parse("1h")
    assert next_due(hourly, None, T0, "UTC") == T0
    assert next_due(hourly, T0, T0, "UTC") == T0 + timedelta(hours=1)
    weekly = Schedule.parse("0 9 * * mon")  # 09:00 on Mondays
    assert next_due(weekly, T0, T0, "UTC") == T0 + timedelta(days=7)  # a check at 09:00:00
    assert next_due(weekly, T0 - timedelta(minutes=1), T0, "UTC") == T0
    assert next_due(weekly, T0, T0, "Asia/Bishkek") == T0 + timedelta(days=6, hours=18)
    a, b, c, d = (
        Source(id=i, url=f"http://127.0.0.1/{i}", parser="page", schedule=s)
        for i, s in (("a", hourly), ("b", hourly), ("c", hourly), ("d", weekly))
    )
    checked = {
        "a": T0 - timedelta(minutes=10),
        "b": T0 - timedelta(minutes=59, seconds=30),  # due within 30 s: counts (cron slack)
        "d": T0 - timedelta(days=1),
    }
    picked = due_sources([a, b, c, d], checked, T0, "UTC")
    assert [s.id for s in picked] == ["b", "c", "d"]
    assert [s.id for s in due_sources([a, b], checked, T0, "UTC", slack=False)] == []


def test_heartbeat_liveness(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    assert read_heartbeat(db) is None
    now = datetime.now(UTC)
    beat = {"pid": os.getpid(), "host": os.uname().nodename, "state": "running"}
    beat |= {"heartbeat_interval": 1, "last_beat": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    Path(heartbeat_path(db)).write_text(json.dumps(beat))
    assert read_heartbeat(db, now)["alive"] is True  # type: ignore[index]
    assert read_heartbeat(db, now + timedelta(seconds=60))["alive"] is False  # type: ignore[index]
    Path(heartbeat_path(db)).write_text(json.dumps({**beat, "state": "stopped"}))
    assert read_heartbeat(db, now)["alive"] is False  # type: ignore[index]
    Path(heartbeat_path(db)).write_text("{not json")
    assert read_heartbeat(db)["state"] == "unreadable"  # type: ignore[index]


# ------------------------------------------------------------------ the daemon as a subprocess


def test_checks_each_source_on_schedule_with_bounded_jitter(
    tmp_path: Path, server: LocalServer, daemons: Callable[..., DaemonProcess]
) -> None:
    server.set("/a", Route(body="<p>a</p>"))
    server.set("/b", Route(body="<p>b</p>"))
    cfg = _daemon_cfg(
        tmp_path,
        source_block("a", server.url("/a"), schedule="2s")
        + source_block("b", server.url("/b"), schedule="3s"),
        jitter=0.5,
    )
    d = daemons(cfg, "--log-format", "json")
    d.wait_for(lambda: len(_times(server, "/a")) >= 1, label="the first check of a")
    time.sleep(6.8)
    window_end = time.monotonic()
    alive = pawatch("--config", str(cfg), "status")
    beat = pawatch("--config", str(cfg), "status", "--daemon", "--format", "json")
    assert d.stop() == 0, d.log

    a, b = _times(server, "/a"), _times(server, "/b")
    in_window = [len([t for t in x if t <= window_end]) for x in (a, b)]
    assert 3 <= in_window[0] <= 5 and 2 <= in_window[1] <= 4, (a, b, window_end)
    for times, period in ((a, 2.0), (b, 3.0)):
        # overdue at start (never checked), then every period plus 0 to 0.5 s of jitter: against
        # the grid of the second check, each later one is off by at most the jitter (no drift)
        offsets = [t - times[1] - k * period for k, t in enumerate(times[1:])]
        assert all(abs(o) <= 0.5 + 0.15 for o in offsets), (period, offsets)
        gaps = [y - x for x, y in pairwise(times[1:])]
        assert all(period - 0.65 <= g <= period + 0.65 for g in gaps), (period, gaps)
    assert abs(a[0] - b[0]) < 0.1  # overdue at start: one batch

    lines = [json.loads(line) for line in d.log.splitlines()]
    checks = [x for x in lines if x.get("event") == "check"]
    assert {"source", "outcome", "duration", "events", "time", "level"} <= set(checks[0])
    assert [x["outcome"] for x in checks if x["source"] == "a"][:2] == ["new", "unchanged"]
    assert all(isinstance(x["duration"], float) for x in checks)
    assert lines[-1]["message"] == "daemon stopped"

    assert alive.returncode == 0 and "Daemon: running" in alive.stdout, alive.stdout
    assert "NEXT RUN" in alive.stdout
    state = json.loads(beat.stdout)
    assert beat.returncode == 0 and state["alive"] and state["pid"] == d.proc.pid
    assert set(state["sources"]) == {"a", "b"} and state["sources"]["a"]["next_run"]
    after = pawatch("--config", str(cfg), "status", "--daemon")
    assert after.returncode == 1 and "stopped cleanly" in after.stdout


def test_restart_checks_overdue_sources_but_not_just_checked_ones(
    tmp_path: Path, server: LocalServer, daemons: Callable[..., DaemonProcess]
) -> None:
    for name in ("fresh", "stale", "never"):
        server.set(f"/{name}", Route(body=f"<p>{name}</p>"))
    blocks = [source_block(n, server.url(f"/{n}"), schedule="1h") for n in ("fresh", "stale")]
    cfg = _daemon_cfg(tmp_path, "".join(blocks), jitter=30)
    assert pawatch("--config", str(cfg), "run").returncode == 0
    db = tmp_path / "pawatch.db"
    with sqlite3.connect(db) as conn:  # stale: last checked two hours ago
        conn.execute(
            "UPDATE fetch_log SET started_at = ? WHERE source_id = 'stale'",
            ((datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),),
        )
    cfg = _daemon_cfg(
        tmp_path, "".join(blocks) + source_block("never", server.url("/never"), schedule="1h")
    )
    d = daemons(cfg)
    d.wait_for(lambda: server.hits("/stale") == 2 and server.hits("/never") == 1)
    time.sleep(1.0)
    assert server.hits("/fresh") == 1, d.log  # the first run only
    state = json.loads(Path(heartbeat_path(str(db))).read_text())
    fresh_last = datetime.strptime(_fetch_rows(db, "fresh")[-1][0], "%Y-%m-%dT%H:%M:%SZ")
    fresh_next = datetime.strptime(state["sources"]["fresh"]["next_run"], "%Y-%m-%dT%H:%M:%SZ")
    assert timedelta(hours=1) <= fresh_next - fresh_last <= timedelta(hours=1, seconds=1)
    assert d.stop() == 0


def test_sigterm_lets_the_in_flight_check_finish_and_exits_0(
    tmp_path: Path, server: LocalServer, daemons: Callable[..., DaemonProcess]
) -> None:
    server.set("/slow", Route(body="<p>slow</p>", delay=2.0))
    server.set("/fast", Route(body="<p>fast</p>"))
    cfg = _daemon_cfg(
        tmp_path,
        source_block("slow", server.url("/slow"), schedule="1h")
        + source_block("fast", server.url("/fast"), schedule="1s"),
        grace_period=10,
    )
    d = daemons(cfg)
    d.wait_for(lambda: server.hits("/slow") == 1, label="the slow request")
    time.sleep(0.3)
    fast_hits = server.hits("/fast")
    sent = time.monotonic()
    assert d.stop(signal.SIGTERM) == 0, d.log
    assert time.monotonic() - sent < 5
    assert server.hits("/fast") == fast_hits  # no new checks after SIGTERM
    assert [o for _, o in _fetch_rows(tmp_path / "pawatch.db", "slow")] == ["new"]
    assert "SIGTERM: stopping" in d.log and "daemon stopped" in d.log
    assert "Traceback" not in d.log
    state = json.loads(Path(heartbeat_path(str(tmp_path / "pawatch.db"))).read_text())
    assert state["state"] == "stopped" and state["stopped_at"]


def test_grace_period_over_abandons_the_check_and_still_exits_0(
    tmp_path: Path, server: LocalServer, daemons: Callable[..., DaemonProcess]
) -> None:
    server.set("/slow", Route(body="<p>slow</p>", delay=6.0))
    cfg = _daemon_cfg(
        tmp_path, source_block("slow", server.url("/slow"), schedule="1h"), grace_period=0.5
    )
    d = daemons(cfg)
    d.wait_for(lambda: server.hits("/slow") == 1, label="the slow request")
    sent = time.monotonic()
    assert d.stop(signal.SIGINT) == 0, d.log
    assert time.monotonic() - sent < 3
    assert _fetch_rows(tmp_path / "pawatch.db", "slow") == []  # not recorded: overdue next start
    assert "abandoned in-flight check(s) of slow" in d.log


def test_sighup_reloads_the_config_and_keeps_the_old_one_when_bad(
    tmp_path: Path, server: LocalServer, daemons: Callable[..., DaemonProcess]
) -> None:
    server.set("/a", Route(body="<p>a</p>"))
    server.set("/b", Route(body="<p>b</p>"))
    block_a = source_block("a", server.url("/a"), schedule="1h")
    cfg = _daemon_cfg(tmp_path, block_a)
    d = daemons(cfg)
    d.wait_for(lambda: server.hits("/a") == 1)
    good = cfg.read_text() + source_block("b", server.url("/b"), schedule="1h")
    cfg.write_text(good)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(lambda: server.hits("/b") == 1, label="the added source b")
    assert "config reloaded: 2 source(s); added or rescheduled: b" in d.log

    cfg.write_text(good.replace('schedule = "1h"', 'schedule = "often"'))
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(lambda: "keeping the previous configuration" in d.log, label="the bad reload")
    assert "schedule: expected an interval like" in d.log
    time.sleep(0.6)  # a heartbeat
    state = read_heartbeat(str(tmp_path / "pawatch.db"))
    assert state is not None and state["alive"]
    assert set(state["sources"]) == {"a", "b"}
    assert "keeping the previous configuration" in state["last_error"]["message"]
    assert server.hits("/a") == 1 and server.hits("/b") == 1
    assert d.stop() == 0


def test_concurrent_run_waits_for_the_daemon_or_exits_3(
    tmp_path: Path, server: LocalServer, daemons: Callable[..., DaemonProcess]
) -> None:
    server.set("/slow", Route(body="<p>slow</p>", delay=2.5))
    server.set("/fast", Route(body="<p>fast</p>"))
    cfg = _daemon_cfg(
        tmp_path,
        source_block("slow", server.url("/slow"), schedule="1h")
        + source_block("fast", server.url("/fast"), schedule="1h"),
    )
    d = daemons(cfg)
    d.wait_for(lambda: server.hits("/slow") == 1, label="the daemon's slow check")
    db = tmp_path / "pawatch.db"

    started = time.monotonic()
    busy = pawatch("--config", str(cfg), "run", "--wait", "0.3")
    assert busy.returncode == 3, busy.stderr
    assert time.monotonic() - started < 2.5
    assert f"is busy: {db}.lock is held by another pawatch (pid {d.proc.pid}, daemon" in busy.stderr
    assert "nothing was done" in busy.stderr

    second = daemons(cfg)  # one daemon per database
    assert second.proc.wait(15) == 3 and "another daemon already runs" in second.log

    waited = pawatch("--config", str(cfg), "run", "--due", "--wait", "20")
    assert waited.returncode == 0, waited.stderr
    assert "Checked 0 source(s)" in waited.stdout  # the daemon checked both meanwhile
    assert server.hits("/slow") == 1 and server.hits("/fast") == 1
    assert [o for _, o in _fetch_rows(db, "slow")] == ["new"]
    assert d.stop() == 0


def test_run_due_checks_only_due_sources(tmp_path: Path, server: LocalServer) -> None:
    for name in ("hourly", "often", "never"):
        server.set(f"/{name}", Route(body=f"<p>{name}</p>"))
    cfg = write_config(
        tmp_path,
        source_block("hourly", server.url("/hourly"), schedule="1h")
        + source_block("often", server.url("/often"), schedule="1s"),
    )
    assert pawatch("--config", str(cfg), "run").returncode == 0
    cfg.write_text(
        cfg.read_text() + source_block("never", server.url("/never"), schedule="1h"),
        encoding="utf-8",
    )
    time.sleep(1.1)
    proc = pawatch("--config", str(cfg), "run", "--due", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["checked"] == 2 and summary["sources"]["new"] == ["never"]
    assert summary["sources"]["unchanged"] == ["often"]
    assert server.hits("/hourly") == 1
