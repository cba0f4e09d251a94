"""The delivery policy of [[channels]] is email's (storage/outbox.py, ``Outbox.settle``),
through real local HTTP endpoints, a real SMTP server, a real SQLite file and the commands
run as processes: a permanent refusal (HTTP 4xx but 408/429) is ``failed`` at once with the
status and the answer; a temporary one (a refused connection, HTTP 5xx, 408, 429) is retried
at most ``max_resends`` times, then ``failed``; a timeout after the request was sent is re-sent
under the same id at most ``max_resends`` times; ``failed`` rows show in ``status`` (text and
JSON), make ``deliver``/``run`` exit 1, and ``deliver --retry-failed`` sends them."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pawatch.config.model import ChannelSettings, EmailSettings, Settings
from pawatch.delivery import deliver_pending
from pawatch.demo.localserver import LocalServer, Route
from pawatch.demo.smtpcapture import free_port, smtp_capture
from pawatch.storage import Store
from tests.conftest import source_block, write_config
from tests.test_channels import Receiver, channel, channel_rows
from tests.test_delivery import T0, add_events, composition, email_settings, news, store
from tests.test_smtp_replies import outbox, pawatch, pending_events

__all__ = ["store"]


def hook_statuses(result: Any) -> list[str]:
    return [m.status for m in result.messages if m.channel == "desk-hook"]


def last_errors(store: Store) -> set[str]:
    rows = store.db.conn.execute(
        "SELECT last_error FROM outbox WHERE channel LIKE 'ch:%'"
    ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("code", [400, 401, 403, 404, 410, 422])
def test_a_permanent_http_refusal_is_failed_at_once_with_the_answer(
    store: Store, code: int
) -> None:
    add_events(store, composition("KG"), news("Session"))
    with Receiver(code, reply=b"no such hook \x1b[31m" + b"x" * 5000) as hook:
        first = deliver_pending(channel(hook.url), store, now=T0, out=io.StringIO())
        assert first.exit_code == 1 and hook_statuses(first) == ["refused"]
        assert {s for *_, s in channel_rows(store)} == {"failed"}
        (error,) = last_errors(store)
        assert f"answered HTTP {code}: no such hook" in error
        assert "\x1b" not in error and len(error) < 300  # a short, printable excerpt
        assert "marked failed, not sent again" in " ".join(first.summary_lines())
        later = deliver_pending(channel(hook.url), store, now=T0 + timedelta(hours=1))
        assert later.ok and hook_statuses(later) == [] and len(hook.posts) == 1


@pytest.mark.parametrize("code", [500, 502, 503, 408, 429])
def test_a_temporary_http_refusal_is_retried_at_most_max_resends_times(
    store: Store, code: int
) -> None:
    add_events(store, composition("KG"))
    # [email] with no recipients: only its max_resends matters here
    email = EmailSettings(smtp_host="127.0.0.1", sender="p@example.org", max_resends=2)
    with Receiver(code) as hook:
        settings = replace(channel(hook.url), email=email)
        seen = []
        for minute in range(5):
            result = deliver_pending(settings, store, now=T0 + timedelta(minutes=minute))
            seen.append((result.exit_code, hook_statuses(result)))
            if minute < 2:
                assert {s for *_, s in channel_rows(store)} == {"pending"}
        assert len(hook.posts) == 3  # the first try and max_resends = 2 retries
    assert seen == [(1, ["failed"]), (1, ["failed"]), (1, ["refused"]), (0, []), (0, [])]
    assert [s for *_, s in channel_rows(store)] == ["failed"]
    (error,) = last_errors(store)
    assert error.startswith("not accepted after 3 tries (max_resends = 2); last error:")
    assert f"answered HTTP {code}" in error


def test_a_temporary_failure_then_success_is_delivered_once(store: Store) -> None:
    add_events(store, composition("KG"))
    with Receiver(503, 429, 200) as hook:
        results = [
            hook_statuses(deliver_pending(channel(hook.url), store, now=T0 + timedelta(minutes=m)))
            for m in range(4)
        ]
        assert [len(hook.accepted), len(hook.posts)] == [1, 3]
    assert results == [["failed"], ["failed"], ["sent"], []]
    assert [s for *_, s in channel_rows(store)] == ["delivered"]


def test_a_refused_connection_is_temporary_and_capped(store: Store) -> None:
    add_events(store, composition("KG"))
    settings = channel(f"http://127.0.0.1:{free_port()}/hook")  # nobody listens
    seen = [
        hook_statuses(deliver_pending(settings, store, now=T0 + timedelta(minutes=m)))
        for m in range(5)
    ]
    assert seen == [["failed"]] * 3 + [["refused"], []]  # default max_resends = 3
    (error,) = last_errors(store)
    assert "not accepted after 4 tries (max_resends = 3)" in error and "cannot connect" in error


def test_a_timeout_after_sending_is_resent_under_the_same_key_then_failed(store: Store) -> None:
    add_events(store, composition("KG"))
    email = EmailSettings(smtp_host="127.0.0.1", sender="p@example.org", max_resends=1)
    with Receiver(200, delay=1.5) as hook:
        settings = replace(channel(hook.url, timeout=0.5), email=email)
        seen = [
            hook_statuses(deliver_pending(settings, store, now=T0 + timedelta(minutes=m)))
            for m in range(3)
        ]
        keys = [headers["idempotency-key"] for headers, _, _ in hook.posts]
    assert seen == [["uncertain"], ["uncertain"], ["refused"]]
    assert len(keys) == 2 and len(set(keys)) == 1  # one re-send, the same message
    (error,) = last_errors(store)
    assert "not confirmed by the server after 2 send(s)" in error and "max_resends = 1" in error


def test_an_email_channel_refused_with_554_is_failed(store: Store) -> None:
    add_events(store, composition("KG"))
    with smtp_capture(data_reply="554 5.6.0 rejected by policy") as smtp:
        email = email_settings(smtp.port).email
        assert email is not None
        kg = ChannelSettings("kg-mail", "email", "mailto:a@example.org")
        settings = Settings(email=replace(email, recipients=()), channels=(kg,))
        result = deliver_pending(settings, store, now=T0)
        assert [m.status for m in result.messages] == ["refused"] and result.exit_code == 1
    assert [s for *_, s in channel_rows(store)] == ["failed"]
    expected = f"127.0.0.1:{smtp.port} refused the message: 554 5.6.0 rejected by policy"
    assert last_errors(store) == {expected}


def test_failed_channel_rows_through_the_commands(tmp_path: Path, server: LocalServer) -> None:
    """`run` exits 1 when the channel refuses; `status` shows the failed rows (text and
    JSON); a later `deliver` leaves them alone; `deliver --retry-failed` sends them."""
    with Receiver(404, reply=b'{"error": "unknown hook"}') as hook:
        server.set("/a", Route(body="<html><body><p>page a</p></body></html>"))
        cfg = write_config(
            tmp_path,
            source_block("a", server.url("/a"))
            + f'[[channels]]\nname = "desk-hook"\nkind = "webhook"\nurl = "{hook.url}"\n',
        )
        db = tmp_path / "pawatch.db"
        assert pawatch(cfg, "run").returncode == 0  # first sight: the channel is set up
        server.set("/a", Route(body="<html><body><p>page a, changed</p></body></html>"))
        run = pawatch(cfg, "run")
        assert run.returncode == 1, run.stderr
        assert len(hook.posts) == 1
        failed = [r for r in outbox(db) if r[1] == "ch:desk-hook"]
        assert [r[2] for r in failed] == ["failed"]
        assert 'answered HTTP 404: {"error": "unknown hook"}' in str(failed[0][3])

        status = pawatch(cfg, "status")
        assert "! delivery: 1 outbox row(s) FAILED" in status.stdout
        assert "HTTP 404" in status.stdout
        data = json.loads(pawatch(cfg, "status", "--format", "json").stdout)
        assert {"ok", "unhealthy", "sources", "daemon"} <= set(data)  # the keys it had
        delivery = data["delivery"]
        assert delivery["failed"] == 1 and "HTTP 404" in delivery["last_error"]
        assert delivery["last_error_at"].endswith("Z")

        again = pawatch(cfg, "deliver")
        assert again.returncode == 0 and len(hook.posts) == 1  # failed: not sent again
        hook.answers = [200]
        retry = pawatch(cfg, "deliver", "--retry-failed")
        assert retry.returncode == 0, retry.stderr
        assert "1 failed outbox row(s) pending again" in retry.stderr
        assert len(hook.accepted) == 1
    assert [r[2] for r in outbox(db) if r[1] == "ch:desk-hook"] == ["delivered"]
    data = json.loads(pawatch(cfg, "status", "--format", "json").stdout)
    assert data["delivery"] == {"failed": 0, "last_error": None, "last_error_at": None}


def test_deliver_exits_1_when_a_channel_refuses(tmp_path: Path) -> None:
    db = tmp_path / "pawatch.db"
    with Receiver(503) as hook:
        cfg = write_config(
            tmp_path,
            f'[[channels]]\nname = "desk-hook"\nkind = "webhook"\nurl = "{hook.url}"\n',
        )
        pending_events(db)
        result = pawatch(cfg, "deliver")
        assert result.returncode == 1
        assert "FAILED channel desk-hook" in result.stderr and "HTTP 503" in result.stderr
    assert {r[2] for r in outbox(db) if r[1] == "ch:desk-hook"} == {"pending"}
