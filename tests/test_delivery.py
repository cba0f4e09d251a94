"""The outbox and delivery, exactly once, against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pawatch.config.model import EmailSettings, Settings
from pawatch.delivery import deliver_pending, lease
from pawatch.demo.localserver import LocalServer, Route
from pawatch.demo.smtpcapture import Received, free_port, smtp_capture
from pawatch.pipeline import run_once
from pawatch.settings import load_settings
from pawatch.storage import SourceRow, Store
from pawatch.storage.outbox import Outbox
from tests.conftest import source_block, write_config

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


# ------------------------------------------------------------------ helpers (also for test_email)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "pawatch.db") as s:
        s.sync_sources(
            [
                SourceRow("assembly", "https://pacsto.org/", "delegations", None),
                SourceRow("events", "https://pacsto.org/events", "news-list", None),
            ],
            T0,
        )
        yield s


def add_events(store: Store, *events: dict[str, Any]) -> list[int]:
    """Insert events the way a check does: through Store._insert_event in a transaction."""
    ids = []
    with store.transaction():
        for e in events:
            fields = {"detected_at": "2026-11-27T08:00:00Z", "source_id": "assembly", **e}
            ids.append(store._insert_event(**fields))
    return ids


def composition(delegation: str = "KG", old: str = "6", new: str = "7") -> dict[str, Any]:
    return {
        "kind": "composition",
        "delegation": delegation,
        "attribute": "seats:total",
        "old": old,
        "new": new,
        "url": "https://pacsto.org/",
    }


def news(title: str) -> dict[str, Any]:
    return {"kind": "news", "source_id": "events", "attribute": "item", "new": title}


def email_settings(port: int, **extra: Any) -> Settings:
    email = EmailSettings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        security="none",
        sender="pawatch <pawatch@example.org>",
        recipients=("desk@example.org",),
        timeout=5.0,
    )
    return Settings(email=replace(email, **extra))


def statuses(store: Store) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in store.db.conn.execute(
            "SELECT event_id, channel, status FROM outbox ORDER BY event_id, channel"
        )
    ]


def message_ids(messages: Sequence[Received]) -> list[str]:
    return [str(m.message()["Message-ID"]) for m in messages]


# ------------------------------------------------------------------ the outbox


def test_events_enter_the_outbox_in_their_own_transaction(store: Store) -> None:
    add_events(store, composition("KG"), news("Session"))
    assert statuses(store) == [(1, "KG", "pending"), (1, "all", "pending"), (2, "all", "pending")]
    with pytest.raises(RuntimeError), store.transaction():
        store._insert_event(**{"detected_at": "x", "source_id": "assembly", **composition()})
        raise RuntimeError("the check failed")
    assert store.db.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 3


def test_stdout_without_email_prints_once(store: Store) -> None:
    add_events(store, composition("KG"), news("Session"))
    out = io.StringIO()
    result = deliver_pending(Settings(), store, now=T0, out=out)
    assert result.mode == "stdout" and result.ok and result.pending == 0
    assert "Seats in all: 6 -> 7 seats" in out.getvalue()
    assert "(1, 'KG', 'skipped')" in str(statuses(store))
    again = io.StringIO()
    assert deliver_pending(Settings(), store, now=T0, out=again).messages == []
    assert again.getvalue() == ""


def test_dry_run_sends_and_marks_nothing(store: Store) -> None:
    add_events(store, composition("KG"))
    with smtp_capture() as server:
        out = io.StringIO()
        result = deliver_pending(email_settings(server.port), store, now=T0, dry_run=True, out=out)
        assert [m.status for m in result.messages] == ["dry-run"]
        assert "To: desk@example.org" in out.getvalue()
        assert server.messages == []
    assert {s for _, _, s in statuses(store)} == {"pending"}


# ------------------------------------------------------------------ exactly once


def test_server_down_then_up_delivers_once(store: Store) -> None:
    add_events(store, composition("KG"))
    port = free_port()
    settings = email_settings(port)
    down = deliver_pending(settings, store, now=T0)
    assert down.exit_code == 1 and down.failed[0].error_kind == "connection"
    assert "connection refused" in str(down.failed[0].error)
    assert [s for _, c, s in statuses(store) if c == "all"] == ["pending"]
    add_events(store, news("Second event while down"))
    with smtp_capture(port=port) as server:
        up = deliver_pending(settings, store, now=T0 + timedelta(minutes=5))
        assert up.ok and [m.status for m in up.messages] == ["sent"]
        again = deliver_pending(settings, store, now=T0 + timedelta(minutes=10))
        assert again.messages == [] and again.ok
        received = server.wait_for(1)
    assert len(received) == 1  # both events, one message, once
    assert "seats 6 -> 7; 1 news item" in str(received[0].message()["Subject"])
    assert [s for _, c, s in statuses(store) if c == "all"] == ["delivered", "delivered"]


def test_refused_recipient_does_not_cost_the_others_their_events(store: Store) -> None:
    add_events(store, composition("KG"))
    everyone = ("desk@example.org", "typo@example.org", "boss@example.org")
    with smtp_capture(reject={"typo@example.org"}) as server:
        settings = email_settings(server.port, recipients=everyone)
        result = deliver_pending(settings, store, now=T0)
        assert result.exit_code == 1
        assert list(result.refused) == ["typo@example.org"]
        assert "550" in result.refused["typo@example.org"]
        received = server.wait_for(1)
        assert received[0].rcpt_tos == ("desk@example.org", "boss@example.org")
        assert deliver_pending(settings, store, now=T0 + timedelta(hours=1)).messages == []
    row = store.db.conn.execute("SELECT status, last_error FROM outbox WHERE channel = 'all'")
    status, error = row.fetchone()
    assert status == "delivered" and "typo@example.org" in error


def test_every_recipient_refused_keeps_the_events_pending(store: Store) -> None:
    add_events(store, composition("KG"))
    with smtp_capture(reject={"desk@example.org"}) as server:
        result = deliver_pending(email_settings(server.port), store, now=T0)
        assert result.exit_code == 1 and result.failed[0].error_kind == "rejected"
        assert server.messages == []
    assert [s for _, c, s in statuses(store) if c == "all"] == ["pending"]


def test_killed_between_send_and_mark_resends_with_the_same_message_id(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_events(store, composition("KG"), news("Session"))
    with smtp_capture() as server:
        settings = email_settings(server.port)
        assert settings.email is not None

        def killed(*args: object, **kwargs: object) -> int:
            raise KeyboardInterrupt  # the process dies after the server said 250

        with monkeypatch.context() as m:
            m.setattr(Outbox, "mark_delivered", killed)
            with pytest.raises(KeyboardInterrupt):
                deliver_pending(settings, store, now=T0)
        assert len(server.wait_for(1)) == 1
        assert {s for _, c, s in statuses(store) if c == "all"} == {"sending"}

        # Within the lease another process may still be sending: left alone.
        soon = deliver_pending(settings, store, now=T0 + timedelta(seconds=30))
        assert soon.messages == [] and "another pawatch process" in soon.deferred["all"]
        assert len(server.messages) == 1

        # After the lease: the same events again under the same Message-ID, then delivered.
        later = T0 + lease(settings.email) + timedelta(seconds=1)
        add_events(store, news("Arrived after the crash"))
        result = deliver_pending(settings, store, now=later)
        assert [m.status for m in result.messages] == ["resent", "sent"]
        received = server.wait_for(3)
        assert len(received) == 3
        first, resent, new = message_ids(received)
        assert first == resent != new
        assert deliver_pending(settings, store, now=later + timedelta(hours=1)).messages == []
    assert {s for _, c, s in statuses(store) if c == "all"} == {"delivered"}


def test_timeout_after_the_message_was_sent_is_resent_with_the_same_id(store: Store) -> None:
    add_events(store, composition("KG"))
    port = free_port()
    settings = email_settings(port, timeout=0.5)
    with smtp_capture(port=port, data_delay=2) as server:
        result = deliver_pending(settings, store, now=T0)
        assert [m.status for m in result.messages] == ["uncertain"]
        assert result.failed[0].error_kind == "timeout"
        server.wait_for(1)
    assert {s for _, c, s in statuses(store) if c == "all"} == {"sending"}
    with smtp_capture(port=port) as server:
        result = deliver_pending(settings, store, now=T0 + timedelta(minutes=1))
        assert [m.status for m in result.messages] == ["resent"]
        assert message_ids(server.wait_for(1)) == [result.messages[0].message_id]
    assert {s for _, c, s in statuses(store) if c == "all"} == {"delivered"}


# ------------------------------------------------------------------ routing, digest, health


def test_per_delegation_recipients_get_their_delegation(store: Store) -> None:
    add_events(store, composition("KG"), composition("TJ", "5", "4"), news("Session"))
    with smtp_capture() as server:
        settings = email_settings(
            server.port, delegation_recipients={"KG": ("kg-desk@example.org",)}
        )
        result = deliver_pending(settings, store, now=T0)
        assert result.ok and result.skipped == 1  # the TJ channel: nobody receives it
        received = {m.rcpt_tos: m.message() for m in server.wait_for(2)}
    assert set(received) == {("desk@example.org",), ("kg-desk@example.org",)}
    everything = received[("desk@example.org",)]
    kg = received[("kg-desk@example.org",)]
    assert str(everything["Subject"]).strip().startswith("[pawatch] Kyrgyzstan: seats 6 -> 7; ")
    assert str(kg["Subject"]) == "[pawatch KG] Kyrgyzstan: seats 6 -> 7"
    assert "TJ" not in kg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert everything["Message-ID"] != kg["Message-ID"]


def test_digest_sends_at_most_one_email_per_period(store: Store) -> None:
    with smtp_capture() as server:
        settings = email_settings(server.port, digest=timedelta(days=1))
        add_events(store, composition("KG"))
        assert [m.status for m in deliver_pending(settings, store, now=T0).messages] == ["sent"]
        add_events(store, news("One"))
        held = deliver_pending(settings, store, now=T0 + timedelta(hours=2))
        assert held.messages == [] and held.ok
        assert held.deferred["all"] == "digest: next email after 2026-11-28T09:00:00Z"
        add_events(store, news("Two"))
        assert deliver_pending(settings, store, now=T0 + timedelta(hours=23)).messages == []
        result = deliver_pending(settings, store, now=T0 + timedelta(days=1))
        assert [len(m.event_ids) for m in result.messages] == [2]
        received = server.wait_for(2)
    assert len(received) == 2
    assert str(received[1].message()["Subject"]) == "[pawatch] 2 news items"


def test_health_alerts_repeat_while_a_source_stays_broken(
    tmp_path: Path, server: LocalServer
) -> None:
    server.set("/down", Route(status=500))
    cfg = write_config(tmp_path, source_block("down", server.url("/down"), failing_after=1))
    settings = load_settings(cfg)
    now = datetime.now(UTC)
    with Store.open(settings.storage.path) as store, smtp_capture() as smtp:
        run_once(settings, settings.sources, store)
        mail = email_settings(smtp.port, health_repeat=timedelta(hours=6))
        kinds = [e["kind"] for e in store.events()]
        assert kinds == ["source_failing"]

        first = deliver_pending(mail, store, now=now)
        assert [len(m.event_ids) for m in first.messages] == [1]
        assert deliver_pending(mail, store, now=now + timedelta(hours=5)).messages == []
        reminder = deliver_pending(mail, store, now=now + timedelta(hours=6, minutes=1))
        assert [m.event_ids for m in reminder.messages] == [()]
        assert deliver_pending(mail, store, now=now + timedelta(hours=7)).messages == []
        received = smtp.wait_for(2)
        subject = str(received[1].message()["Subject"])
        assert subject == "[pawatch] 1 source needs attention"
        text = received[1].message().get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "still need attention" in text and "HTTP 500" in text

        server.set("/down", Route(body="<html><body><p>back</p></body></html>"))
        run_once(settings, settings.sources, store)  # recovered: the reminders stop
        deliver_pending(mail, store, now=now + timedelta(hours=8))
        later = deliver_pending(mail, store, now=now + timedelta(days=3))
        assert later.messages == []
        assert store.db.conn.execute("SELECT COUNT(*) FROM health_notices").fetchone()[0] == 0
