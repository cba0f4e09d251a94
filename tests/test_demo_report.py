"""The demo's email, as `pawatch demo` writes it to report.eml, read back with email.parser:
one item for the Kyrgyz change with its three sources and the quoted evidence, a subject in
words, no CLI command."""

from __future__ import annotations

import email.parser
import email.policy
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def eml(tmp_path_factory: pytest.TempPathFactory) -> EmailMessage:
    out = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        [sys.executable, "-m", "pawatch.cli", "demo", "--dir", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    path = out / "report.eml"
    assert f"Report:   {path}" in done.stdout
    with Path(path).open("rb") as fh:
        message = email.parser.BytesParser(policy=email.policy.default).parse(fh)
    assert isinstance(message, EmailMessage)
    return message


def bodies(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


def test_subject_says_what_happened_in_words(eml: EmailMessage) -> None:
    subject = " ".join(str(eml["Subject"]).split())
    assert subject.startswith(
        "[pawatch] Kyrgyzstan: Supreme Council seats 6 -> 7, 2 new members; "
        "Tajikistan: new plenipotentiary"
    ), subject
    assert len(subject) <= 120
    for internal in ("(none)", "#", "supreme-council", "KG ", "demo-"):
        assert internal not in subject


def test_one_item_for_the_kyrgyz_change_with_three_sources_and_evidence(
    eml: EmailMessage,
) -> None:
    text, html = bodies(eml)
    assert text.count("Supreme Council: 6 -> 7 seats") == 1
    item = text[text.index("* Supreme Council: 6 -> 7 seats") :]
    item = item[: item.index("\n* ")]
    assert "seen on 3 sources:" in item
    assert item.count("  - 127.0.0.1:") == 3  # one line per source, with its link
    assert "/ru/" in item and "/countries/kyrgyz-republic" in item
    english = "Supreme Council of the Kyrgyz Republic to the CSTO PA consists of {} deputies."
    assert item.count(f'before: "Delegation of the {english.format(6)}"') == 2
    assert item.count(f'after:  "Delegation of the {english.format(7)}"') == 2
    russian = "Делегация Жогорку Кенеша Кыргызской Республики в ПА ОДКБ представлена {} депутатами."
    assert f'before: "{russian.format(6)}"' in item
    assert f'after:  "{russian.format(7)}"' in item
    assert html.count("Supreme Council: 6 -&gt; 7 seats") == 1
    assert "seen on 3 sources" in html and russian.format(7) in html
    assert text.index("KYRGYZSTAN") < text.index("TAJIKISTAN") < text.index("NEWS")
    assert "New plenipotentiary representative: Gafurzoda Abdukhalil" in text


def test_no_cli_command_in_the_email(eml: EmailMessage) -> None:
    text, html = bodies(eml)
    for body in (text, html):
        assert "pawatch show" not in body and "pawatch diff" not in body
        assert "--db" not in body
