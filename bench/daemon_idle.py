"""Memory and CPU of an idle ``pawatch daemon`` watching N sources on an accelerated schedule.

Run: ``python bench/daemon_idle.py [--sources 30] [--minutes 10] [--interval 2s]
[--sample 5] [--keep DIR]`` (with the venv's python from the repo root).

What happens:

1. N synthetic ~20 KB pages (Russian/English paragraphs) are served by a
   :class:`pawatch.demo.localserver.LocalServer` thread on 127.0.0.1 in this process (so the
   measured process is only the daemon); half of them send an ETag (answered 304 afterwards),
   the others a plain 200 with the same body (hashed, not re-parsed). Every 50th request to
   page 0 gets a new body, so a change (and its events) happens now and then.
2. A config with one ``[[sources]]`` per page, ``schedule = --interval``, ``[daemon]
   jitter = 0.5``, ``per_host_delay = 0`` is written to a temporary folder, and
   ``python -m pawatch.cli --config CFG -q daemon`` starts as a subprocess.
3. Every ``--sample`` seconds the daemon's RSS (``VmRSS`` in /proc/PID/status) and CPU
   (utime+stime in /proc/PID/stat) are sampled; at the end the daemon gets SIGTERM and must
   exit 0.

It prints the samples, min/max/first/last RSS, the RSS trend over the second half (MB per
minute, least squares), mean and max CPU %, checks per second from the database, and the
target (RSS flat, under 100 MB). A benchmark, not a test: it exits non-zero only when the
daemon fails (a non-zero exit, failed checks), never because a target is missed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pawatch.demo.localserver import LocalServer, Route  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PARAGRAPH = (
    "Парламентская ассамблея Организации Договора о коллективной безопасности провела "
    "заседание Постоянной комиссии по вопросам обороны и безопасности. "
    "The Parliamentary Assembly of the CSTO held a meeting of its standing commission. "
)


def page(index: int, version: int) -> str:
    body = "".join(f"<p>{PARAGRAPH} ({index}.{k}.{version})</p>\n" for k in range(60))
    return f"<html><head><title>page {index}</title></head><body>{body}</body></html>"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def slope_mb_per_min(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return 0.0 if den == 0 else sum((t - mx) * (v - my) for t, v in points) / den * 60


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", type=int, default=30)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--interval", default="2s", help="every source's schedule")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--keep", metavar="DIR", help="keep config, database and log here")
    args = ap.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pawatch-idle-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "idle.db"
    for suffix in ("", "-wal", "-shm", ".lock", ".daemon.json", ".daemon.lock"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)

    with LocalServer("127.0.0.1") as server:
        server.set("/robots.txt", Route(body="User-agent: *\nAllow: /\n"))
        for i in range(args.sources):
            etag = f'"v1-{i}"' if i % 2 == 0 else None
            server.set(f"/p{i}", Route(body=page(i, 1), etag=etag))
        stop_changes = threading.Event()

        def change_now_and_then() -> None:  # page 0 changes every ~50 of its requests
            version = 1
            while not stop_changes.wait(1.0):
                if server.hits("/p0") >= version * 50:
                    version += 1
                    server.set("/p0", Route(body=page(0, version), etag=f'"v{version}-0"'))

        changer = threading.Thread(target=change_now_and_then, daemon=True)
        changer.start()

        cfg = work / "idle.toml"
        blocks = "".join(
            f'[[sources]]\nid = "p{i}"\nurl = "{server.url(f"/p{i}")}"\nparser = "page"\n'
            f'schedule = "{args.interval}"\n'
            for i in range(args.sources)
        )
        cfg.write_text(
            f'[storage]\npath = "{db}"\n'
            "[http]\nper_host_delay = 0\nper_host_concurrency = 8\nretries = 0\n"
            '[daemon]\njitter = 0.5\nheartbeat_interval = 5\ndeliver = "off"\n' + blocks,
            encoding="utf-8",
        )
        log_path = work / "daemon.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAWATCH_")}
        env["PYTHONPATH"] = str(ROOT)
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pawatch.cli", "--config", str(cfg), "-q", "daemon"],
                stdout=log,
                stderr=log,
                env=env,
                cwd=ROOT,
            )
        print(
            f"daemon pid {proc.pid}: {args.sources} sources every {args.interval} for "
            f"{args.minutes:g} min; sampling every {args.sample:g} s; files in {work}"
        )
        print(f"{'t (s)':>7} {'RSS MB':>8} {'CPU %':>7} {'checks':>7}")
        samples: list[tuple[float, float, float]] = []  # (t, rss MB, cpu % since last)
        start = time.monotonic()
        end = start + args.minutes * 60
        last_t, last_cpu = start, cpu_seconds(proc.pid)
        try:
            while time.monotonic() < end and proc.poll() is None:
                time.sleep(min(args.sample, max(end - time.monotonic(), 0.05)))
                if proc.poll() is not None:
                    break
                now, cpu = time.monotonic(), cpu_seconds(proc.pid)
                pct = (cpu - last_cpu) / (now - last_t) * 100
                last_t, last_cpu = now, cpu
                rss = rss_kb(proc.pid) / 1024
                samples.append((now - start, rss, pct))
                checks = sum(server.hits(f"/p{i}") for i in range(args.sources))
                print(f"{now - start:7.0f} {rss:8.1f} {pct:7.1f} {checks:7d}", flush=True)
            total_cpu = cpu_seconds(proc.pid) if proc.poll() is None else float("nan")
        finally:
            stop_changes.set()
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
        elapsed = time.monotonic() - start

    with sqlite3.connect(db) as conn:
        checks, failed = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(outcome = 'failed'), 0) FROM fetch_log"
        ).fetchone()
        events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    if not samples:
        print(f"no samples; daemon exit code {code}; log: {log_path}")
        return 1
    rss_mb = [s[1] for s in samples]
    cpu_pct = [s[2] for s in samples]
    half = [(t, r) for t, r, _ in samples if t >= samples[-1][0] / 2]
    print()
    trend = slope_mb_per_min(half)
    mean_cpu = sum(cpu_pct) / len(cpu_pct)
    print(
        f"RSS      min {min(rss_mb):.1f} MB, max {max(rss_mb):.1f} MB, first {rss_mb[0]:.1f} MB, "
        f"last {rss_mb[-1]:.1f} MB; trend over the second half {trend:+.3f} MB/min "
        "(target: flat, under 100 MB)"
    )
    print(
        f"CPU      mean {mean_cpu:.1f} %, max {max(cpu_pct):.1f} %, min {min(cpu_pct):.1f} % "
        f"of one core; {total_cpu:.1f} s user+sys in {elapsed:.0f} s"
    )
    print(
        f"checks   {checks} in {elapsed:.0f} s ({checks / elapsed:.1f}/s), {failed} failed, "
        f"{events} event(s); daemon exit code {code} (SIGTERM)"
    )
    return 0 if code == 0 and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
