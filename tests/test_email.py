"""Email through a real SMTP server (aiosmtpd on 127.0.0.1): parts, recipients, encoding,
AUTH, STARTTLS and implicit TLS with a certificate made here, typed errors, no leaked password.
"""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pawatch.cli import cli
from pawatch.config import ConfigError
from pawatch.config.model import EmailSettings
from pawatch.delivery import deliver_pending
from pawatch.demo.smtpcapture import free_port, save_eml, smtp_capture
from pawatch.mailer import (
    MailAuthError,
    MailConfigError,
    MailConnectError,
    MailTimeout,
    MailTLSError,
    build_message,
    message_id_for,
    send,
    send_test,
)
from pawatch.settings import settings_from_text
from pawatch.storage import Store
from tests.test_delivery import T0, add_events, composition, email_settings, news, store

__all__ = ["store"]  # the fixture, shared with test_delivery

PASSWORD = "Zebra-Quasar-7731-Ptarmigan"
ENV = {"PAWATCH_SMTP_PASSWORD": PASSWORD}


def plain(port: int, **extra: object) -> EmailSettings:
    email = email_settings(port).email
    assert email is not None
    return replace(email, **extra)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made now (openssl; no network)."""
    if shutil.which("openssl") is None:
        pytest.skip("STARTTLS/TLS tests need the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = (
        f"openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout {key} -out {cert} "
        "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
    )
    subprocess.run(
        command.split(),
        check=True,
        capture_output=True,
    )
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


# ------------------------------------------------------------------ the message


def test_report_email_has_both_parts_escaped_html_and_a_subject_in_words(
    store: Store, tmp_path: Path
) -> None:
    add_events(
        store,
        {**composition("KG"), "kind": "member_added", "attribute": "member", "old": None,
         "new": "Новикова Фарида"},
        news('<script>alert("x")</script> Заседание Совета'),
    )  # fmt: skip
    with smtp_capture() as server:
        result = deliver_pending(email_settings(server.port), store, now=T0)
        assert result.ok
        (received,) = server.wait_for(1)
    assert received.mail_from == "pawatch@example.org"
    assert received.rcpt_tos == ("desk@example.org",)
    raw_headers = received.data.split(b"\r\n\r\n", 1)[0]
    assert raw_headers.isascii()
    msg = received.message()
    assert str(msg["Subject"]) == "[pawatch] Kyrgyzstan: 1 new member; 1 news item"
    expected = message_id_for("all", [1, 2], "pawatch@example.org", store.instance_id())
    assert msg["Message-ID"] == expected
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Новикова Фарида" in text and '<script>alert("x")</script>' in text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Заседание Совета" in html
    eml = save_eml(received, tmp_path / "report.eml")
    assert eml.read_bytes() == received.data


def test_message_id_is_stable_for_the_same_events_and_unique_per_database() -> None:
    one = message_id_for("all", [3, 1, 2], "pawatch <p@example.org>", "db-1")
    assert one == message_id_for("all", [1, 2, 3], "p@example.org", "db-1")
    assert one != message_id_for("KG", [1, 2, 3], "p@example.org", "db-1")
    assert one != message_id_for("all", [1, 2], "p@example.org", "db-1")
    assert one != message_id_for("all", [1, 2, 3], "p@example.org", "db-2")
    assert one.startswith("<pawatch.all.") and one.endswith("@example.org>")


def test_header_injection_from_a_scraped_subject_is_flattened() -> None:
    settings = plain(25)
    msg = build_message(
        settings, to=["desk@example.org"], subject="a\r\nBcc: evil@example.org", text="x"
    )
    assert msg["Bcc"] is None and str(msg["Subject"]) == "a Bcc: evil@example.org"


# ------------------------------------------------------------------ AUTH and TLS


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_without_tls_and_no_password_in_logs_or_database(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_events(store, composition("KG"))
    with smtp_capture(auth={"monitor": PASSWORD}) as server:
        settings = email_settings(
            server.port, username="monitor", password_env="PAWATCH_SMTP_PASSWORD"
        )
        wrong = deliver_pending(settings, store, now=T0, env={"PAWATCH_SMTP_PASSWORD": "nope"})
        assert wrong.failed[0].error_kind == "auth"
        assert "authentication failed" in str(wrong.failed[0].error)
        missing = deliver_pending(settings, store, now=T0, env={})
        assert missing.failed[0].error_kind == "config"
        assert "PAWATCH_SMTP_PASSWORD" in str(missing.failed[0].error)
        result = deliver_pending(settings, store, now=T0, env=ENV)
        assert result.ok
        (received,) = server.wait_for(1)
    assert received.login == "monitor"
    dump = "\n".join(store.db.conn.iterdump())
    assert "INSERT INTO" in dump and PASSWORD not in dump
    assert caplog.records and PASSWORD not in caplog.text
    assert all(PASSWORD not in str(r.args) for r in caplog.records)


def test_starttls_with_a_test_certificate_and_auth(certificate: tuple[Path, Path]) -> None:
    context = server_context(certificate)
    with smtp_capture(
        auth={"monitor": PASSWORD}, tls_context=context, require_starttls=True
    ) as server:
        settings = plain(
            server.port,
            security="starttls",
            ca_bundle=str(certificate[0]),
            username="monitor",
            password_env="PAWATCH_SMTP_PASSWORD",
        )
        result = send_test(settings, env=ENV)
        assert result.reply.startswith("250 ") and result.accepted == ("desk@example.org",)
        (received,) = server.wait_for(1)
        assert received.tls and received.login == "monitor"
        with pytest.raises(MailTLSError, match=r"TLS failed.*CERTIFICATE_VERIFY_FAILED"):
            send_test(replace(settings, ca_bundle=None), env=ENV)  # not trusted
        with pytest.raises(MailAuthError, match="no AUTH"):
            send_test(replace(settings, security="none"), env=ENV)  # AUTH only after TLS


def test_implicit_tls(certificate: tuple[Path, Path]) -> None:
    with smtp_capture(tls_context=server_context(certificate), implicit_tls=True) as server:
        settings = plain(server.port, security="tls", ca_bundle=str(certificate[0]))
        assert send_test(settings).reply.startswith("250 ")
        assert server.wait_for(1)[0].tls


def test_starttls_refused_by_a_plain_server() -> None:
    with smtp_capture() as server, pytest.raises(MailTLSError, match="does not offer STARTTLS"):
        send_test(plain(server.port, security="starttls"))


# ------------------------------------------------------------------ failures


def test_connection_refused_and_timeout_are_typed() -> None:
    with pytest.raises(MailConnectError, match=r"connection refused by 127\.0\.0\.1"):
        send_test(plain(free_port()))
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings = plain(silent.getsockname()[1], timeout=0.3)
        with pytest.raises(MailTimeout, match=r"no answer from 127\.0\.0\.1:\d+ within 0.3s"):
            send_test(settings)


def test_password_missing_or_unsendable_is_a_config_error() -> None:
    settings = plain(25, username="monitor", password_env="PAWATCH_SMTP_PASSWORD")
    msg = build_message(settings, to=["desk@example.org"], subject="s", text="t")
    with pytest.raises(MailConfigError, match="set the environment variable"):
        send(settings, msg, ["desk@example.org"], env={})
    with pytest.raises(MailConfigError, match="non-ASCII") as info:
        send(settings, msg, ["desk@example.org"], env={"PAWATCH_SMTP_PASSWORD": "пароль"})
    assert "пароль" not in str(info.value)


# ------------------------------------------------------------------ the commands


@pytest.fixture
def config_file(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    port = free_port()
    path = tmp_path / "pawatch.toml"
    path.write_text(
        f'[storage]\npath = "{tmp_path / "pawatch.db"}"\n'
        f'[email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\nsecurity = "none"\n'
        'sender = "pawatch@example.org"\nrecipients = ["desk@example.org"]\ntimeout = 5\n',
        encoding="utf-8",
    )
    yield path, port


def test_test_email_prints_the_answer_or_one_line_error(config_file: tuple[Path, int]) -> None:
    path, port = config_file
    runner = CliRunner()
    down = runner.invoke(cli, ["--config", str(path), "test-email"])
    assert down.exit_code == 1
    assert down.output.strip().count("\n") == 0
    assert "test email failed (connection): connection refused" in down.output
    with smtp_capture(port=port) as server:
        up = runner.invoke(cli, ["--config", str(path), "test-email", "--to", "me@example.org"])
        assert up.exit_code == 0, up.output
        assert "accepted by 127.0.0.1" in up.output and "250 OK queued" in up.output
        assert server.wait_for(1)[0].rcpt_tos == ("me@example.org",)


def test_deliver_command_exit_codes(config_file: tuple[Path, int]) -> None:
    path, port = config_file
    with Store.open(path.parent / "pawatch.db") as s:
        s.sync_sources([], T0)
        s.db.conn.execute(
            "INSERT INTO sources (id, url, parser, delegation, first_seen, updated_at) "
            "VALUES ('assembly', 'https://pacsto.org/', 'delegations', NULL, 'x', 'x')"
        )
        add_events(s, composition("KG"))
    runner = CliRunner()
    failed = runner.invoke(cli, ["--config", str(path), "deliver"])
    assert failed.exit_code == 1 and "FAILED channel all (1 event(s) kept pending)" in failed.output
    with smtp_capture(port=port) as server:
        ok = runner.invoke(cli, ["--config", str(path), "deliver"])
        assert ok.exit_code == 0 and "sent <pawatch.all." in ok.output
        assert len(server.wait_for(1)) == 1
        again = runner.invoke(cli, ["--config", str(path), "deliver"])
        assert again.exit_code == 0 and "nothing to deliver" in again.output


# ------------------------------------------------------------------ the [email] table

GOOD = """[email]
smtp_host = "smtp.example.org"
sender = "pawatch <pawatch@example.org>"
recipients = ["desk@example.org"]
"""


def test_email_config_parses_with_defaults() -> None:
    settings = settings_from_text(
        GOOD + 'delegation_recipients = { KG = ["kg@example.org"] }\ndigest = "1d"\n'
        'username = "monitor"\npassword_env = "PAWATCH_SMTP_PASSWORD"\n'
    )
    email = settings.email
    assert email is not None and email.port == 587 and email.security == "starttls"
    assert email.delegation_recipients == {"KG": ("kg@example.org",)}
    assert email.digest == timedelta(days=1) and email.health_repeat == timedelta(days=1)
    assert email.max_resends == 3
    assert settings_from_text("").email is None
    off = settings_from_text(GOOD + 'security = "tls"\nhealth_repeat = "off"\n').email
    assert off is not None and off.port == 465 and off.health_repeat is None


@pytest.mark.parametrize(
    ("extra", "key", "expected"),
    [
        ("colour = 1", "email.colour", "unknown key; expected one of smtp_host"),
        ('security = "ssl"', "email.security", "expected one of starttls, tls, none"),
        ("smtp_port = 70000", "email.smtp_port", "expected a port number"),
        ('smtp_port = "25"', "email.smtp_port", "expected a port number"),
        ("timeout = 0", "email.timeout", "expected a number > 0"),
        ("max_resends = 101", "email.max_resends", "expected a whole number from 0 to 100"),
        ("max_resends = -1", "email.max_resends", "expected a whole number from 0 to 100"),
        ("max_resends = 2.5", "email.max_resends", "expected a whole number from 0 to 100"),
        ('digest = "daily"', "email.digest", "expected an interval like '6h'"),
        ('password = "hunter2"', "email.password", "never read from the config file"),
        ('username = "monitor"', "email.password_env", "set both or neither"),
        ('password_env = "my-var"', "email.password_env", "name of an environment variable"),
        ('ca_bundle = "nope.pem"', "email.ca_bundle", "expected an existing file"),
        ('delegation_recipients = { kg = ["a@b.org"] }', "email.delegation_recipients",
         "kg: expected a delegation id"),
    ],
)  # fmt: skip
def test_email_config_errors_name_the_key(extra: str, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_text(GOOD + extra + "\n", file="cfg.toml")
    assert info.value.key == key and expected in str(info.value)
    assert str(info.value).startswith(f"cfg.toml: {key}: ")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ('[email]\nsmtp_host = "h"\nsender = "p@e.org"\nrecipients = ["desk at example.org"]',
         "email.recipients", "expected an email address like"),
        ('[email]\nsmtp_host = "h"\nsender = "not an address"\nrecipients = ["a@b.org"]',
         "email.sender", "expected an email address like"),
        ('[email]\nsmtp_host = "h"\nsender = "p@e.org"', "email.recipients", "at least one"),
        ('[email]\nsender = "p@e.org"\nrecipients = ["a@b.org"]', "email.smtp_host", "missing"),
        ('email = "smtp.example.org"', "email", "expected a [email] table"),
    ],
)  # fmt: skip
def test_email_config_required_keys_and_addresses(text: str, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_text(text + "\n", file="cfg.toml")
    assert info.value.key == key and expected in str(info.value)


def test_an_unexpected_sending_error_is_one_line_not_a_traceback() -> None:
    from pawatch.mailer import MailError, _translate

    settings = EmailSettings(smtp_host="127.0.0.1", sender="a@example.org", smtp_port=2525)
    error = _translate(UnicodeEncodeError("ascii", "é", 0, 1, "no"), settings, True)
    assert type(error) is MailError and error.uncertain
    assert str(error).startswith("sending through 127.0.0.1:2525 failed: UnicodeEncodeError")
    assert "\n" not in str(error)
