"""``pawatch demo``: version 1 recorded a week earlier, the newcomer's delivery lines, and
``--serve`` keeping the example sites up for the other commands."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.test_cli import ROOT, pawatch


def test_demo_records_version_1_a_week_earlier_and_explains_delivery(tmp_path: Path) -> None:
    proc = pawatch("demo", "--dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # the delivery said once, in words: no outbox jargon, no repeated "sent <id>" log line
    assert "outbox" not in out and "outbox" not in proc.stderr
    assert (out + proc.stderr).count("sent to desk@localhost") == 1
    assert "sent <" not in proc.stderr
    assert "only the email above went out" in out
    match = re.search(r"history KG --as-of (\d{4}-\d{2}-\d{2})", out)
    assert match, out
    as_of = match.group(1)
    week_ago = datetime.now(UTC) - timedelta(days=7)
    assert abs((datetime.fromisoformat(as_of).replace(tzinfo=UTC) - week_ago).days) <= 2

    db = str(tmp_path / "pawatch.db")
    old = pawatch("--db", db, "history", "KG", "--as-of", as_of, "--format", "json")
    new = pawatch("--db", db, "history", "KG", "--format", "json")
    assert old.returncode == new.returncode == 0
    assert "Farida Newcomer" in new.stdout and "Farida Newcomer" not in old.stdout


@pytest.mark.usefixtures("sigint_default")
def test_demo_serve_keeps_the_sites_up_until_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAWATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    demo = subprocess.Popen(
        [sys.executable, "-m", "pawatch.cli", "demo", "--serve", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert demo.stdout is not None
        config = None
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Config:"):
                config = line.split(":", 1)[1].strip()
            if line.startswith("Serving."):
                break
        assert config is not None and lines[-1].startswith("Serving."), "".join(lines)

        run = pawatch("--config", config, "run")
        assert run.returncode == 0, run.stdout + run.stderr
        assert "0 failed" in run.stdout
        status = pawatch("--config", config, "status")
        assert status.returncode == 0, status.stdout
        # the `try` lines the demo prints work as printed
        tries = [shlex.split(line.split(" try ", 1)[1]) for line in lines if " try " in line]
        assert len(tries) == 2, "".join(lines)
        stricter = pawatch("--config", config, "try", *tries[0])
        assert stricter.returncode == 1 and "fewer than min_items=10" in stricter.stdout
        live = pawatch("--config", config, "try", *tries[1])
        assert live.returncode == 0 and "status: OK" in live.stdout, live.stderr
        assert "Farida Newcomer" in live.stdout  # version 2, fetched from the example site
        test_email = pawatch("--config", config, "test-email")
        assert test_email.returncode == 0, test_email.stderr

        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=30)
        assert demo.returncode == 0, rest
        assert "received an email" in rest  # the test email reached the demo's SMTP server
        assert "Stopped" in rest
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    down = pawatch("--config", config, "run")
    assert down.returncode == 1  # the sites stopped with the demo
