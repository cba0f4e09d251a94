"""``pawatch try``: what a parser reads from a page, a saved file or a stored snapshot, with
nothing written to any database."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from pawatch.demo.localserver import LocalServer, Route
from tests.conftest import source_block, write_config
from tests.test_cli import pawatch

ROSTER = """<!doctype html><html><head><meta charset="utf-8"><title>Deputies</title></head>
<body><div class="list">
<div class="card"><a href="/d/1"><span class="fio">Asanov Bakyt</span></a><i>deputy</i></div>
<div class="card"><a href="/d/2"><span class="fio">Isakova Aigul</span></a><i>deputy</i></div>
<div class="card"><a href="/d/3"><span class="fio">Osmonov Nurlan</span></a><i>speaker</i></div>
</div></body></html>"""

OPTIONS = ("--option", "item=.card", "--option", "name=.fio", "--option", "role=i")


def files_state(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_try_url_prints_facts_and_items_as_json(tmp_path: Path, server: LocalServer) -> None:
    server.set("/deputies", Route(body=ROSTER))
    cfg = write_config(tmp_path, "")
    before = files_state(tmp_path)
    proc = pawatch(
        "--config", str(cfg), "try", server.url("/deputies"), "--parser", "roster",
        "--delegation", "kg", *OPTIONS, "--format", "json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "ok" and report["error"] is None
    assert report["read_from"] == "fetched 200"
    members = [f["value"] for f in report["facts"] if f["attribute"] == "member"]
    assert members == ["Asanov Bakyt", "Isakova Aigul", "Osmonov Nurlan"]
    assert {f["subject"] for f in report["facts"]} == {"delegation:KG"}
    assert report["items"][2]["role"] == "speaker"
    assert report["items"][0]["link"] == server.url("/d/1")
    assert files_state(tmp_path) == before  # no database was created


def test_try_file_says_why_the_selector_failed(tmp_path: Path) -> None:
    page = tmp_path / "saved.html"
    page.write_text(ROSTER, encoding="utf-8")
    proc = pawatch(
        "--db", str(tmp_path / "none.db"), "try", "--file", str(page), "--parser", "roster",
        "--delegation", "KG", "--option", "item=.deputy-card", "--option", "name=.fio",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "status: BROKEN" in proc.stdout
    assert ".deputy-card" in proc.stdout  # names the selector that matched nothing
    assert "facts (0)" in proc.stdout
    assert not (tmp_path / "none.db").exists()

    bounds = pawatch(
        "try", "--file", str(page), "--parser", "roster", "--delegation", "KG", *OPTIONS,
        "--option", "min_items=5",
    )  # fmt: skip
    assert bounds.returncode == 1
    assert "min_items=5" in bounds.stdout


def test_try_bad_option_is_one_line(tmp_path: Path) -> None:
    page = tmp_path / "saved.html"
    page.write_text(ROSTER, encoding="utf-8")
    proc = pawatch("try", "--file", str(page), "--parser", "roster", "--option", "colour=red")
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().splitlines() == [proc.stderr.strip()]
        and "--option colour: unknown option for parser 'roster'" in proc.stderr
    )
    assert "Traceback" not in proc.stderr


def test_try_snapshot_rereads_with_other_options_and_writes_nothing(
    tmp_path: Path, server: LocalServer
) -> None:
    server.set("/deputies", Route(body=ROSTER))
    cfg = write_config(
        tmp_path,
        source_block("kg-roster", server.url("/deputies"), parser="roster", delegation="KG")
        + '[sources.options]\nitem = ".card"\nname = ".fio"\n',
    )
    assert pawatch("--config", str(cfg), "run").returncode == 0
    before = files_state(tmp_path)
    assert "pawatch.db" in before

    same = pawatch("--config", str(cfg), "try", "--snapshot", "1", "--format", "json")
    assert same.returncode == 0, same.stderr
    report = json.loads(same.stdout)
    assert report["parser"] == "roster" and report["delegation"] == "KG"
    assert report["read_from"].startswith("snapshot 1 of kg-roster")
    assert len(report["facts"]) == 3

    stricter = pawatch("--config", str(cfg), "try", "--snapshot", "1", "--option", "min_items=4")
    assert stricter.returncode == 1
    assert "fewer than min_items=4" in stricter.stdout

    other = pawatch("--config", str(cfg), "try", "--snapshot", "1", "--parser", "page")
    assert other.returncode == 0 and "Osmonov Nurlan" in other.stdout

    missing = pawatch("--config", str(cfg), "try", "--snapshot", "99")
    assert missing.returncode == 2 and "no snapshot 99" in missing.stderr
    assert files_state(tmp_path) == before  # the database file's bytes are unchanged


def test_try_snapshot_reads_a_database_another_process_has_open(
    tmp_path: Path, server: LocalServer
) -> None:
    server.set("/p", Route(body="<p>first text</p>"))
    cfg = write_config(tmp_path, source_block("p", server.url("/p")))
    assert pawatch("--config", str(cfg), "run").returncode == 0
    db = tmp_path / "pawatch.db"
    with sqlite3.connect(db) as writer:  # like the daemon: the database open, WAL content
        writer.execute("PRAGMA journal_mode = WAL")
        writer.execute("UPDATE sources SET updated_at = updated_at")
        main_before = hashlib.sha256(db.read_bytes()).hexdigest()
        assert Path(f"{db}-wal").exists()
        proc = pawatch("--config", str(cfg), "try", "--snapshot", "1", "--format", "json")
        assert proc.returncode == 0, proc.stderr
        assert "first text" in proc.stdout
        assert hashlib.sha256(db.read_bytes()).hexdigest() == main_before
