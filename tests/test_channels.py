"""[[channels]]: a JSON webhook and Apprise through real local HTTP endpoints, each channel
with its own outbox rows, delivered once, retried after a failure, never marked delivered on
a refusal; the [report], [feed] and [[channels]] config tables; `pawatch test-channel`."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pawatch.cli import cli
from pawatch.config import ConfigError
from pawatch.config.model import ChannelSettings, Settings
from pawatch.delivery import deliver_pending
from pawatch.demo.smtpcapture import smtp_capture
from pawatch.settings import settings_from_text
from pawatch.storage import Store
from pawatch.storage.changes import Identity
from tests.test_delivery import (
    T0,
    add_events,
    composition,
    email_settings,
    news,
    statuses,
    store,
)

__all__ = ["store"]


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that answers POSTs with the next status of
    ``answers`` (the last one repeating) and keeps every request's headers and body;
    ``delay``: seconds it waits before answering; ``reply``: the body of a non-2xx answer."""

    def __init__(self, *answers: int, delay: float = 0.0, reply: bytes = b"server trouble") -> None:
        self.answers = list(answers) or [200]
        self.delay, self.reply = delay, reply
        self.posts: list[tuple[dict[str, str], bytes, int]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = owner.answers.pop(0) if len(owner.answers) > 1 else owner.answers[0]
                owner.posts.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                time.sleep(owner.delay)
                reply = b'{"ok": true}' if status < 300 else owner.reply
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, status in self.posts if 200 <= status < 300]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(500, 200) as r:
        yield r


def channel(url: str, **extra: Any) -> Settings:
    return Settings(channels=(ChannelSettings(name="desk-hook", kind="webhook", url=url, **extra),))


def channel_rows(store: Store) -> list[tuple[Any, ...]]:
    return [row for row in statuses(store) if row[1].startswith("ch:")]


def test_webhook_500_then_200_is_exactly_one_accepted_delivery(
    store: Store, receiver: Receiver
) -> None:
    settings = channel(receiver.url)
    same = {"identity": Identity("", "6", "7")}  # one delegation-level change, two sources
    add_events(
        store,
        {**composition("KG"), **same},
        {**composition("KG"), "source_id": "events", **same},
        news("Session"),
    )
    out = io.StringIO()
    failed = deliver_pending(settings, store, now=T0, out=out)
    assert not failed.ok and failed.exit_code == 1
    assert [m.status for m in failed.messages if m.channel == "desk-hook"] == ["failed"]
    assert "HTTP 500" in " ".join(failed.summary_lines())
    assert {s for *_, s in channel_rows(store)} == {"pending"}  # never delivered on a refusal
    dry = io.StringIO()
    shown = deliver_pending(settings, store, now=T0, dry_run=True, out=dry)
    assert [m.status for m in shown.messages if m.channel == "desk-hook"] == ["dry-run"]
    assert "Channel desk-hook:" in dry.getvalue() and len(receiver.posts) == 1
    ok = deliver_pending(settings, store, now=T0, out=out)
    assert ok.ok and [m.status for m in ok.messages if m.channel == "desk-hook"] == ["sent"]
    again = deliver_pending(settings, store, now=T0, out=out)
    assert [m for m in again.messages if m.channel == "desk-hook"] == []
    assert [status for *_, status in receiver.posts] == [500, 200]
    (report,) = receiver.accepted
    assert report["format"] == "pawatch-report/2" and report["channel"] == "desk-hook"
    (kg,) = report["delegations"]
    (change,) = kg["changes"]  # one change, seen on two sources
    assert [s["source"] for s in change["sources"]] == ["assembly", "events"]
    assert report["news"][0]["new"] == "Session"
    keys = {headers["idempotency-key"] for headers, _, _ in receiver.posts}
    assert len(keys) == 1  # the retry is the same message
    assert receiver.posts[0][0]["content-type"].startswith("application/json")
    assert channel_rows(store) == [
        (1, "ch:desk-hook", "delivered"),
        (2, "ch:desk-hook", "delivered"),
        (3, "ch:desk-hook", "delivered"),
    ]


def test_each_channel_has_its_own_rows_and_filters(store: Store) -> None:
    with Receiver(200) as tj_hook, Receiver(200) as news_hook:
        settings = Settings(
            channels=(
                ChannelSettings("tj", "webhook", tj_hook.url, delegations=("TJ",)),
                ChannelSettings("news", "webhook", news_hook.url, kinds=("news",)),
            )
        )
        deliver_pending(settings, store, now=T0, out=io.StringIO())  # first sight: nothing
        add_events(store, composition("KG"), composition("TJ", "5", "4"), news("Session"))
        result = deliver_pending(settings, store, now=T0, out=io.StringIO())
        assert result.ok
        (tj,) = tj_hook.accepted
        (only_news,) = news_hook.accepted
    assert [g["delegation"] for g in tj["delegations"]] == ["TJ"] and tj["news"] == []
    assert only_news["delegations"] == [] and only_news["news"][0]["new"] == "Session"
    assert channel_rows(store) == [(2, "ch:tj", "delivered"), (3, "ch:news", "delivered")]


def test_a_channel_added_later_does_not_replay_what_was_delivered(store: Store) -> None:
    add_events(store, composition("KG"))
    deliver_pending(Settings(), store, now=T0, out=io.StringIO())  # printed: delivered
    with Receiver(200) as hook:
        result = deliver_pending(channel(hook.url), store, now=T0, out=io.StringIO())
        assert result.ok and hook.posts == []
        add_events(store, composition("TJ", "5", "4"))
        deliver_pending(channel(hook.url), store, now=T0, out=io.StringIO())
        (report,) = hook.accepted
    assert [g["delegation"] for g in report["delegations"]] == ["TJ"]


def test_apprise_json_url_to_a_local_server(store: Store) -> None:
    pytest.importorskip("apprise")
    with Receiver(200) as server:
        port = server.server.server_address[1]
        settings = Settings(
            channels=(ChannelSettings("chat", "apprise", f"json://127.0.0.1:{port}/notify"),)
        )
        deliver_pending(settings, store, now=T0, out=io.StringIO())
        add_events(store, composition("KG"))
        result = deliver_pending(settings, store, now=T0, out=io.StringIO())
        assert result.ok, result.summary_lines()
        (payload,) = server.accepted
    assert payload["title"] == "[pawatch chat] Kyrgyzstan: seats 6 -> 7"
    assert "Seats in all: 6 -> 7 seats" in payload["message"]
    assert channel_rows(store) == [(1, "ch:chat", "delivered")]


def test_apprise_failure_keeps_the_rows_pending(store: Store) -> None:
    pytest.importorskip("apprise")
    with Receiver(503) as server:
        port = server.server.server_address[1]
        settings = Settings(
            channels=(ChannelSettings("chat", "apprise", f"json://127.0.0.1:{port}/notify"),)
        )
        deliver_pending(settings, store, now=T0, out=io.StringIO())
        add_events(store, composition("KG"))
        result = deliver_pending(settings, store, now=T0, out=io.StringIO())
        assert len(server.posts) >= 1
    assert result.exit_code == 1 and "Apprise could not deliver" in " ".join(result.summary_lines())
    assert channel_rows(store) == [(1, "ch:chat", "pending")]


def test_email_channel_sends_through_the_email_server_once(store: Store) -> None:
    with smtp_capture() as server:
        settings = email_settings(server.port)
        kg = ChannelSettings("kg-analysts", "email", "mailto:a@example.org, b@example.org",
                             delegations=("KG",))  # fmt: skip
        settings = Settings(email=settings.email, channels=(kg,))
        deliver_pending(settings, store, now=T0, out=io.StringIO())
        add_events(store, composition("KG"), composition("TJ", "5", "4"))
        result = deliver_pending(settings, store, now=T0, out=io.StringIO())
        assert result.ok, result.summary_lines()
        again = deliver_pending(settings, store, now=T0, out=io.StringIO())
        assert [m.channel for m in again.messages] == []
        received = {m.rcpt_tos: m.message() for m in server.wait_for(2)}
    assert set(received) == {("desk@example.org",), ("a@example.org", "b@example.org")}
    channel_mail = received[("a@example.org", "b@example.org")]
    assert str(channel_mail["Subject"]) == "[pawatch kg-analysts] Kyrgyzstan: seats 6 -> 7"
    assert channel_mail["X-Pawatch-Channel"] == "kg-analysts"
    assert channel_rows(store) == [(1, "ch:kg-analysts", "delivered")]


# ------------------------------------------------------------------ config and CLI


def test_config_tables_parse() -> None:
    settings = settings_from_text(
        '[report]\nbase_url = "https://data.example.org/"\n'
        '[feed]\npath = "/srv/www/pawatch.atom"\nmax_entries = 20\n'
        '[[channels]]\nname = "desk"\nkind = "webhook"\nurl = "https://hooks.example.org/x"\n'
        'delegations = ["KG"]\nkinds = ["composition", "representative"]\n'
        '[[channels]]\nname = "tg"\nkind = "apprise"\nurl = "tgram://123:abc/-100"\n'
    )
    assert settings.report.base_url == "https://data.example.org"
    assert settings.feed.path == "/srv/www/pawatch.atom" and settings.feed.max_entries == 20
    desk, tg = settings.channels
    assert (desk.kind, desk.delegations, desk.kinds) == (
        "webhook", ("KG",), ("composition", "representative"),
    )  # fmt: skip
    assert tg.url == "tgram://123:abc/-100"
    assert settings_from_text("").channels == ()


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ('[report]\nbase_url = "ftp://x"', "report.base_url", "http:// or https:// URL"),
        ("[feed]\nmax_entries = 0", "feed.max_entries", "from 1 to 10000"),
        ('[feed]\ncolour = "red"', "feed.colour", "unknown key"),
        ('[[channels]]\nname = "a"\nkind = "sms"\nurl = "x://y"', "channels[0].kind", "one of"),
        ('[[channels]]\nname = "a"\nkind = "webhook"', "channels[0].url", "missing"),
        ('[[channels]]\nname = "a"\nkind = "webhook"\nurl = "hooks.example.org"',
         "channels[0].url", "http:// or https://"),
        ('[[channels]]\nname = "a"\nkind = "email"\nurl = "desk@example.org"',
         "channels[0].url", "mailto:"),
        ('[[channels]]\nname = "a"\nkind = "apprise"\nurl = "x://y"\ndelegations = ["kg"]',
         "channels[0].delegations", "delegation id like 'KG'"),
        ('[[channels]]\nname = "a"\nkind = "apprise"\nurl = "x://y"\nkinds = ["seats"]',
         "channels[0].kinds", "event kinds"),
        ('[[channels]]\nname = "a"\nkind = "apprise"\nurl = "x://y"\n'
         '[[channels]]\nname = "a"\nkind = "apprise"\nurl = "x://z"',
         "channels[1].name", "duplicate"),
    ],
)  # fmt: skip
def test_bad_config_tables_are_one_clear_error(text: str, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_text(text, "c.toml")
    assert f"c.toml: {key}:" in str(caught.value) and expected in str(caught.value)


def test_test_channel_command(tmp_path: Path) -> None:
    runner = CliRunner()
    with Receiver(200, 500) as hook:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[[channels]]\nname = "desk"\nkind = "webhook"\nurl = "{hook.url}"\n',
            encoding="utf-8",
        )
        ok = runner.invoke(cli, ["--config", str(cfg), "test-channel", "desk"])
        assert ok.exit_code == 0 and "channel desk (webhook" in ok.output
        assert "accepted: HTTP 200" in ok.output
        refused = runner.invoke(cli, ["--config", str(cfg), "test-channel", "desk"])
        assert refused.exit_code == 1 and "answered HTTP 500" in refused.output
        unknown = runner.invoke(cli, ["--config", str(cfg), "test-channel", "nope"])
        assert unknown.exit_code == 2 and "known: desk" in unknown.output
        (test_report, _) = [json.loads(body) for _, body, _ in hook.posts]
    assert test_report["format"] == "pawatch-report/2" and test_report["channel"] == "desk"


def test_credentials_in_a_channel_url_are_never_shown(tmp_path: Path) -> None:
    from pawatch.channels import shown_url

    assert shown_url("https://user:s3cret@hooks.example.org:8443/x") == (
        "https://***@hooks.example.org:8443/x"
    )
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[channels]]\nname = "d"\nkind = "webhook"\nurl = "http://u:s3cret@127.0.0.1:9/x"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(cfg), "test-channel", "d"])
    assert result.exit_code == 1 and "s3cret" not in result.output
    assert "***@127.0.0.1:9" in result.output


def database_files(db: Path) -> dict[str, bytes]:
    """The database and its WAL files, byte for byte (not the empty writers' lock file)."""
    return {p.name: p.read_bytes() for p in db.parent.glob(db.name + "*") if p.suffix != ".lock"}


def test_dry_run_shows_a_new_channel_its_first_report_and_writes_nothing(tmp_path: Path) -> None:
    """A channel's rows are made by its first real delivery; `deliver --dry-run` (a process)
    shows what it would get before that, and leaves the database file byte-identical."""
    from tests.test_smtp_replies import outbox, pawatch, pending_events

    db = tmp_path / "pawatch.db"
    pending_events(db)  # a KG composition change and a news item, never delivered
    with Receiver(200) as hook:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[storage]\npath = "{db}"\n'
            f'[[channels]]\nname = "desk-hook"\nkind = "webhook"\nurl = "{hook.url}"\n'
            f'[[channels]]\nname = "tj-only"\nkind = "webhook"\nurl = "{hook.url}"\n'
            'delegations = ["TJ"]\n',
            encoding="utf-8",
        )
        files = database_files(db)
        dry = pawatch(cfg, "deliver", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert database_files(db) == files and b"ch:desk-hook" not in files[db.name]
        assert hook.posts == []
        shown = dry.stdout.split("Channel desk-hook:\n", 1)[1]
        assert "Seats in all: 6 -> 7 seats" in shown and "Session" in shown
        assert "Channel tj-only:" not in dry.stdout  # its filter leaves it nothing
        assert not [r for r in outbox(db) if r[1].startswith("ch:")]
        real = pawatch(cfg, "deliver")  # what the dry run showed is what is sent
        assert real.returncode == 0, real.stderr
        (report,) = hook.accepted
    assert report["channel"] == "desk-hook" and report["news"][0]["new"] == "Session"
    assert [c["summary"] for g in report["delegations"] for c in g["changes"]] == [
        "Seats in all: 6 -> 7 seats"
    ]
