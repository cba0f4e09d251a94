"""Text from the web is data, never control: a page carrying terminal escapes (OSC 52 clipboard
writes, OSC 8 links, CSI), BEL, bidi overrides and a 100 KB name, and a source URL with a
password, through the real CLI (`run`, `changes`, `history`, `report`, `show --text`,
`sources`, `status`), a real SMTP server and the SQLite file."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from pawatch.demo.localserver import LocalServer, Route
from pawatch.demo.smtpcapture import smtp_capture
from pawatch.display import printable, redact_secrets, redact_url
from tests.conftest import TEST_HTTP

ROOT = Path(__file__).resolve().parents[1]
LONG = "Longname" * 12_500  # 100 KB in one member's name
HOSTILE = [
    "Ivan\x1b]52;c;ZXZpbCBjbGlwYm9hcmQ=\x07 Petrov",  # OSC 52: writes the clipboard
    "Oleg\x1b]8;;http://evil.example/\x1b\\ Clickme\x1b]8;;\x1b\\ Sidorov",  # OSC 8 link
    "Anna \u202eavoN\u202c Bell\x07e",  # a bidi override and BEL
    "Pyotr\x1b[2J\x1b[31m Red\x9b0m \x90dcs\x9c Ivanov\x7f",  # CSI, 8-bit CSI/DCS, DEL
    f"{LONG} Name",
]
# What must never reach a terminal: C0 but tab/newline, DEL, C1, bidi overrides/isolates.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def page(names: list[str]) -> str:
    items = "".join(f'<li class="n">{n}</li>' for n in names)
    return f"<html><body><h1>Members</h1><ul>{items}</ul></body></html>"


def pawatch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAWATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "pawatch.cli", "--config", str(tmp_path / "pawatch.toml"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )


def with_password(url: str) -> str:
    return url.replace("http://", "http://monitor:secret@", 1)


def write_config(tmp_path: Path, server: LocalServer, smtp_port: int | None = None) -> None:
    http = "".join(f"{k} = {v}\n" for k, v in TEST_HTTP.items())
    email = (
        f'[email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_port}\nsecurity = "none"\n'
        'sender = "pawatch@example.org"\nrecipients = ["desk@example.org"]\n'
        if smtp_port
        else ""
    )
    text = (
        f'[storage]\npath = "{tmp_path / "pawatch.db"}"\n[http]\n{http}{email}'
        f'[[sources]]\nid = "kg-roster"\nurl = "{with_password(server.url("/r"))}"\n'
        'parser = "roster"\ndelegation = "KG"\n'
        '[sources.options]\nname = ".n"\ndelegation = "KG"\n'
        f'[[sources]]\nid = "gone"\nurl = "{with_password(server.url("/gone"))}"\n'
        'parser = "page"\n'
    )
    (tmp_path / "pawatch.toml").write_text(text, encoding="utf-8")


def assert_safe(proc: subprocess.CompletedProcess[str], *, stderr: bool = True) -> None:
    for name, out in (("stdout", proc.stdout), ("stderr", proc.stderr if stderr else "")):
        found = CONTROL.search(out)
        assert found is None, f"{name} of {proc.args[4:]}: {found and found.group()!r}"
        assert "secret" not in out, f"{name} of {proc.args[4:]} shows the URL password"
        assert out.count("Longname") < 1000, f"{name} of {proc.args[4:]} prints the 100 KB name"
        assert "ZXZpbCBjbGlwYm9hcmQ=" not in out and "evil.example" not in out


@pytest.fixture
def checked(tmp_path: Path, server: LocalServer) -> Path:
    """Two runs: a plain roster, then the hostile one (its names become member_added)."""
    server.set("/r", Route(body=page(["Plain Person"])))
    server.set("/gone", Route(status=404))
    write_config(tmp_path, server)
    first = pawatch(tmp_path, "run")
    assert first.returncode == 1, first.stderr  # "gone" fails, with its URL in the error
    assert_safe(first)
    server.set("/r", Route(body=page(["Plain Person", *HOSTILE])))
    second = pawatch(tmp_path, "run", "--no-deliver")
    assert second.returncode == 1 and "failed: gone" in second.stdout, second.stderr
    assert "member_added" in second.stdout + second.stderr or "5 event" in second.stdout
    assert_safe(second)
    assert "monitor:***@127.0.0.1" in second.stdout + second.stderr  # the user stays visible
    as_json = pawatch(tmp_path, "run", "--format", "json")
    assert (
        as_json.returncode == 1 and "monitor:***@" in json.loads(as_json.stdout)["errors"]["gone"]
    )
    assert_safe(as_json)
    return tmp_path


def test_query_and_report_commands_print_no_control_and_short_values(checked: Path) -> None:
    changes = pawatch(checked, "changes")
    assert changes.returncode == 0, changes.stderr
    assert_safe(changes)
    assert "Ivan Petrov" in changes.stdout and "Pyotr Red" in changes.stdout
    assert "Longname Longname" in changes.stdout  # shortened, not dropped
    assert max(len(line) for line in changes.stdout.splitlines()) < 400

    history = pawatch(checked, "history", "KG")
    assert history.returncode == 0, history.stderr
    assert_safe(history)
    assert "Anna avo" in history.stdout and "Longname Longname" in history.stdout
    assert max(len(line) for line in history.stdout.splitlines()) < 3000

    for fmt in ("text", "html"):
        report = pawatch(checked, "report", "--since", "1d", "--format", fmt)
        assert report.returncode == 0, report.stderr
        assert_safe(report)
        assert "Oleg" in report.stdout and "Longname Longname" in report.stdout
        assert max(len(line) for line in report.stdout.splitlines()) < 1000

    status = pawatch(checked, "status")
    assert_safe(status)
    assert "! gone:" in status.stdout and "monitor:***@" in status.stdout
    for args, code in (
        (("status", "--format", "json"), 1),  # exit 1: the source "gone" is failing
        (("sources",), 0),
        (("sources", "--format", "json"), 0),
    ):
        proc = pawatch(checked, *args)
        assert proc.returncode == code and "secret" not in proc.stdout + proc.stderr, args
        assert "monitor:***@127.0.0.1" in proc.stdout, args


def test_show_text_strips_controls_and_json_stays_exact(checked: Path) -> None:
    with sqlite3.connect(checked / "pawatch.db") as conn:
        (snapshot,) = conn.execute(
            "SELECT MAX(id) FROM snapshots WHERE source_id = 'kg-roster'"
        ).fetchone()
    show = pawatch(checked, "show", str(snapshot), "--text")
    assert show.returncode == 0, show.stderr
    assert CONTROL.search(show.stdout + show.stderr) is None
    assert "Ivan Petrov" in show.stdout and "secret" not in show.stderr
    # JSON escapes control characters itself: the value stays exactly what the page said
    rows = json.loads(pawatch(checked, "changes", "--format", "json").stdout)
    names = {r["new"] for r in rows if r["kind"] == "member_added"}
    assert any("\x1b]52;" in n for n in names) and max(len(n) for n in names) > 100_000


def test_the_database_holds_no_url_password(checked: Path) -> None:
    with sqlite3.connect(checked / "pawatch.db") as conn:
        dump = "\n".join(conn.iterdump())
    assert "secret" not in dump
    assert "monitor:***@127.0.0.1" in dump  # sources, fetch_log and snapshots keep the user


def test_email_subject_and_text_part_are_safe(tmp_path: Path, server: LocalServer) -> None:
    server.set("/r", Route(body=page(["Plain Person"])))
    server.set("/gone", Route(body=page(["x"])))
    with smtp_capture() as smtp:
        write_config(tmp_path, server, smtp.port)
        assert pawatch(tmp_path, "run").returncode == 0
        server.set("/r", Route(body=page(["Plain Person", *HOSTILE])))
        run = pawatch(tmp_path, "run")
        assert run.returncode == 0, run.stderr
        received = smtp.wait_for(2, timeout=10)
    message: EmailMessage = received[-1].message()
    subject = str(message["Subject"])
    assert CONTROL.search(subject) is None and len(subject) <= 400, subject
    assert "Ivan Petrov" in subject or "member" in subject
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    for content in (text.get_content(), html.get_content()):
        part = content.replace("\r\n", "\n")  # the SMTP policy's line ends
        assert CONTROL.search(part) is None
        assert part.count("Longname") < 1000 and "Longname Longname" in part
        assert "secret" not in part and "ZXZpbCBjbGlwYm9hcmQ=" not in part


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\x1b]52;c;Zm9v\x07b", "ab"),
        ("a\x1b]8;;http://x/\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),
        ("a\x1b[1;31mb\x1b[0m", "ab"),
        ("a\x9b1mb", "a1mb"),  # an 8-bit C1 control goes alone (mis-decoded text has many)
        ("a\x1b]52;c;unterminated\nnext", "a\nnext"),
        ("tab\tnew\nline\r", "tab\tnew\nline"),
        ("\u202eevil\u202c \u2066iso\u2069", "evil iso"),
        ("Кыргыз Республикасы", "Кыргыз Республикасы"),
        ("a\x00b\x07c\x7fd\x85e", "abcde"),
    ],
)
def test_printable(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_redaction() -> None:
    assert redact_url("http://user:secret@h:8080/p?q=1") == "http://user:***@h:8080/p?q=1"
    assert redact_url("https://h/p") == "https://h/p"
    assert redact_url("http://user@h/") == "http://user@h/"
    assert redact_url("http://u:p@ss@h/") == "http://u:***@h/"
    message = "HTTP 404 from http://u:s3cr3t@h/x; proxy socks5://a:b@p:1 failed; mail x@y"
    assert redact_secrets(message) == (
        "HTTP 404 from http://u:***@h/x; proxy socks5://a:***@p:1 failed; mail x@y"
    )


def test_a_password_stored_by_an_older_pawatch_is_scrubbed_without_a_new_baseline(
    checked: Path,
) -> None:
    db = checked / "pawatch.db"
    open_facts = "SELECT COUNT(*) FROM facts WHERE source_id = 'kg-roster' AND ended_at IS NULL"
    with sqlite3.connect(db) as conn:
        before = conn.execute(open_facts).fetchone()[0]
        conn.execute("UPDATE sources SET url = replace(url, ':***@', ':secret@')")
    assert before > 5
    rerun = pawatch(checked, "run", "--no-deliver")
    assert rerun.returncode == 1 and "URL changed" not in rerun.stderr, rerun.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute(open_facts).fetchone()[0] == before  # the same page, no new baseline
        urls = [r[0] for r in conn.execute("SELECT url FROM sources")]
    assert urls and all("monitor:***@" in u for u in urls)
