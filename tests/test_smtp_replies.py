"""Every SMTP reply counts, through a real SMTP server (aiosmtpd on 127.0.0.1) and the real
commands run as processes: a 451 or 554 at the end of DATA, a recipient answered 450, a
server that keeps the message but answers too late, and the Message-ID of each database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from pawatch.delivery import deliver_pending
from pawatch.demo.localserver import LocalServer, Route
from pawatch.demo.smtpcapture import free_port, smtp_capture
from pawatch.storage import SourceRow, Store
from pawatch.storage.schema import migrations
from tests.conftest import source_block, write_config
from tests.test_delivery import T0, add_events, composition, email_settings, message_ids, news

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAWATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def pawatch(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pawatch.cli", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=ROOT,
    )


def outbox(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT event_id, channel, status, last_error FROM outbox ORDER BY event_id, channel"
        ).fetchall()


def email_config(tmp_path: Path, server: LocalServer, port: int, *extra: str) -> Path:
    """A config with one source on the local web server and an [email] table."""
    server.set("/a", Route(body="<html><body><p>page a</p></body></html>"))
    cfg = write_config(tmp_path, source_block("a", server.url("/a")))
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f'[email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\nsecurity = "none"\n'
        'sender = "pawatch@example.org"\nrecipients = ["desk@example.org"]\ntimeout = 5\n'
        + "".join(f"{line}\n" for line in extra),
        encoding="utf-8",
    )
    return cfg


def pending_events(db: Path) -> None:
    """A database with two undelivered events, as a check leaves them."""
    with Store.open(db) as store:
        store.sync_sources(
            [
                SourceRow("assembly", "https://pacsto.org/", "delegations", None),
                SourceRow("events", "https://pacsto.org/events", "news-list", None),
            ],
            T0,
        )
        add_events(store, composition("KG"), news("Session"))


def test_451_keeps_pending_554_marks_failed_and_the_exit_codes_say_so(
    tmp_path: Path, server: LocalServer
) -> None:
    db = tmp_path / "pawatch.db"
    port = free_port()
    cfg = email_config(tmp_path, server, port)
    pending_events(db)
    with smtp_capture(port=port, data_reply="451 4.3.0 try again later") as smtp:
        later = pawatch(cfg, "deliver")
        assert later.returncode == 1, later.stderr
        assert "451 4.3.0 try again later" in later.stderr and "kept pending" in later.stderr
        assert len(smtp.refused) == 1 and smtp.messages == []
        assert {(c, s) for _, c, s, _ in outbox(db)} == {("all", "pending"), ("KG", "skipped")}

        smtp.configure(data_reply="554 5.6.0 rejected by policy")
        run = pawatch(cfg, "run", "--format", "json")
        assert run.returncode == 1, run.stderr
        assert len(smtp.refused) == 2 and smtp.messages == []
        rows = [r for r in outbox(db) if r[1] == "all"]
        assert [r[2] for r in rows] == ["failed", "failed"]
        assert all("554 5.6.0 rejected by policy" in str(r[3]) for r in rows)

        status = pawatch(cfg, "status")
        assert status.returncode == 0, status.stderr
        assert "! delivery: 2 outbox row(s) FAILED" in status.stdout
        assert "554 5.6.0 rejected by policy" in status.stdout

        smtp.configure()  # the server takes mail again: failed rows are not sent again
        again = pawatch(cfg, "deliver")
        assert again.returncode == 0 and "nothing to deliver" in again.stderr
        assert smtp.messages == [] and len(smtp.refused) == 2

        retry = pawatch(cfg, "deliver", "--retry-failed")  # a person fixed the cause
        assert retry.returncode == 0, retry.stderr
        assert "2 failed outbox row(s) pending again" in retry.stderr
        assert len(smtp.wait_for(1)) == 1
    assert {s for _, c, s, _ in outbox(db) if c == "all"} == {"delivered"}


def test_test_email_says_refused_and_exits_1(tmp_path: Path, server: LocalServer) -> None:
    port = free_port()
    cfg = email_config(tmp_path, server, port)
    for reply in ("554 5.6.0 rejected by policy", "451 4.3.0 try again later"):
        with smtp_capture(port=port, data_reply=reply) as smtp:
            result = pawatch(cfg, "test-email")
            assert result.returncode == 1, result.stdout
            assert f"refused: {reply}" in result.stderr
            assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
            assert "accepted" not in result.stdout and len(smtp.refused) == 1
    with smtp_capture(port=port, defer={"desk@example.org"}):
        deferred = pawatch(cfg, "test-email", "--to", "desk@example.org", "--to", "b@example.org")
        assert deferred.returncode == 1
        assert "refused: 450 4.2.1 <desk@example.org>" in deferred.stderr


def test_a_recipient_answered_450_gets_the_events_later(tmp_path: Path) -> None:
    db = tmp_path / "pawatch.db"
    pending_events(db)
    both = ("desk@example.org", "boss@example.org")
    with Store.open(db) as store, smtp_capture(defer={"boss@example.org"}) as smtp:
        settings = email_settings(smtp.port, recipients=both)
        first = deliver_pending(settings, store, now=T0)
        assert first.exit_code == 1 and list(first.refused) == ["boss@example.org"]
        assert [m.rcpt_tos for m in smtp.wait_for(1)] == [("desk@example.org",)]
        assert {(c, s) for _, c, s, _ in outbox(db)} == {
            ("all", "delivered"),
            ("KG", "skipped"),
            ("all>boss@example.org", "pending"),
        }
        still = deliver_pending(settings, store, now=T0 + timedelta(minutes=5))
        assert still.exit_code == 1 and len(smtp.messages) == 1  # 450 again: still pending
        assert {s for _, c, s, _ in outbox(db) if c.startswith("all>")} == {"pending"}

        smtp.configure()
        retry = deliver_pending(settings, store, now=T0 + timedelta(minutes=10))
        assert retry.ok, retry.summary_lines()
        received = smtp.wait_for(2)
        assert received[1].rcpt_tos == ("boss@example.org",)
        text = received[1].message().get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Seats in all: 6 -> 7 seats" in text and "Session" in text
        assert message_ids(received)[0] != message_ids(received)[1]
        assert deliver_pending(settings, store, now=T0 + timedelta(hours=1)).messages == []
    assert {s for _, c, s, _ in outbox(db) if c != "KG"} == {"delivered"}


def test_an_unconfirmed_message_is_resent_at_most_max_resends_times(tmp_path: Path) -> None:
    db = tmp_path / "pawatch.db"
    pending_events(db)
    port = free_port()
    with Store.open(db) as store, smtp_capture(port=port, data_delay=2.5) as smtp:
        settings = email_settings(port, timeout=1.0, max_resends=2)
        codes = []
        for minute in range(5):
            result = deliver_pending(settings, store, now=T0 + timedelta(minutes=minute))
            codes.append((result.exit_code, [m.status for m in result.messages]))
        received = smtp.wait_for(3, timeout=10)
    assert codes == [
        (1, ["uncertain"]),
        (1, ["uncertain"]),
        (1, ["uncertain"]),
        (1, ["refused"]),  # given up: marked failed for a person to look
        (0, []),
    ]
    assert len(received) == 3 and len(set(message_ids(received))) == 1
    rows = [r for r in outbox(db) if r[1] == "all"]
    assert {r[2] for r in rows} == {"failed"}
    assert all("not confirmed by the server after 3 send(s)" in str(r[3]) for r in rows)
    assert all("max_resends = 2" in str(r[3]) for r in rows)


def test_message_ids_differ_between_databases_and_old_databases_get_an_instance_id(
    tmp_path: Path,
) -> None:
    ids = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        pending_events(tmp_path / name / "pawatch.db")
        with Store.open(tmp_path / name / "pawatch.db") as store, smtp_capture() as smtp:
            assert deliver_pending(email_settings(smtp.port), store, now=T0).ok
            ids.append(message_ids(smtp.wait_for(1))[0])
            instance = store.instance_id()
        with Store.open(tmp_path / name / "pawatch.db") as store:
            assert store.instance_id() == instance  # made once, kept
    assert ids[0] != ids[1]  # same events, same channel, two databases

    # A database made by the previous version (migrations up to 0006) with a pending event.
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old, isolation_level=None)
    migrations.apply(Database(conn), stop_before="0007_instance_id")
    conn.execute(
        "INSERT INTO sources (id, url, parser, first_seen, updated_at) "
        "VALUES ('assembly', 'https://pacsto.org/', 'delegations', 'x', 'x')"
    )
    conn.execute(
        "INSERT INTO events (kind, detected_at, source_id, delegation) "
        "VALUES ('composition', '2026-11-27T08:00:00Z', 'assembly', 'KG')"
    )
    conn.close()
    with Store.open(old) as store:
        assert len(store.instance_id()) == 36
        assert [(c, s) for _, c, s, _ in outbox(old)] == [("KG", "pending"), ("all", "pending")]
        add_events(store, {**composition("TJ"), "old": "5"})  # the trigger fills the outbox
        assert len(outbox(old)) == 4


def test_a_channel_not_attempted_after_an_unconfirmed_one_stays_pending(tmp_path: Path) -> None:
    """The server keeps the `all` message past the timeout (maybe delivered: in flight);
    the KG channel is then not tried in that run: its rows go back to pending, uncounted,
    instead of being held as "maybe delivered" and re-sent as if they had been sent."""
    db = tmp_path / "pawatch.db"
    pending_events(db)
    port = free_port()
    with Store.open(db) as store, smtp_capture(port=port, data_delay=2.5) as smtp:
        settings = email_settings(
            port, timeout=1.0, delegation_recipients={"KG": ("kg@example.org",)}
        )
        result = deliver_pending(settings, store, now=T0)
        assert {m.channel: m.status for m in result.messages} == {
            "all": "uncertain",
            "KG": "not-attempted",
        }
        smtp.wait_for(1, timeout=10)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT channel, status, message_id IS NULL, failures FROM outbox ORDER BY channel"
        ).fetchall()
    assert ("KG", "pending", 1, 0) in rows
    assert {r[1] for r in rows if r[0] == "all"} == {"sending"}
