"""The database as analysts query it: full-text search that sqlite-utils and Datasette see, and
the readable text of every stored page (``snapshot_text``, stored by line: ``text_lines``,
``body_text``)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlite_utils import Database

from pawatch.cli.web import datasette_metadata
from pawatch.demo.localserver import LocalServer, Route
from pawatch.storage import SourceRow, Store, bodytext
from pawatch.storage.schema import migrations
from pawatch.storage.store import CheckInput, compress_body
from tests.conftest import source_block, write_config
from tests.test_cli import pawatch

SENATE = """<!doctype html><html><head><title>Senate</title>
<script>var senators = "hidden";</script><style>p { color: red }</style></head>
<body><h1>Senate of the Republic</h1><p>The senators of the   delegation</p>
<ul><li>Ivan Petrov</li><li>Anna Sidorova</li></ul></body></html>"""

NEWS = """<!doctype html><html><body><main>
<article class="news-item"><h3><a href="/news/1">Meeting of the Council</a></h3>
<time datetime="2026-11-20">20 November 2026</time><p>The Council met in Minsk.</p></article>
<article class="news-item"><h3><a href="/news/2">Seminar on elections</a></h3>
<time datetime="2026-11-21">21 November 2026</time><p>Observers trained.</p></article>
</main></body></html>"""


# the canned query Datasette offers (README's "which snapshot first named ..." is the same)
FIRST_SAID = datasette_metadata("pawatch")["databases"]["pawatch"]["queries"][
    "first_snapshot_saying"
]["sql"]
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def sqlite_utils(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("sqlite-utils", path=str(Path(sys.executable).parent))
    assert exe, "sqlite-utils CLI is installed with the package"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def db_after_run(tmp_path: Path, server: LocalServer) -> Path:
    server.set("/senate", Route(body=SENATE))
    server.set("/news", Route(body=NEWS))
    cfg = write_config(
        tmp_path,
        source_block("senate", server.url("/senate"))
        + source_block("news", server.url("/news"), parser="news-list"),
    )
    proc = pawatch("--config", str(cfg), "run")
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "pawatch.db"


def test_sqlite_utils_search_news_and_text_lines(db_after_run: Path) -> None:
    news = sqlite_utils("search", str(db_after_run), "news", "Council", "-c", "title")
    assert news.returncode == 0, news.stderr
    assert [r["title"] for r in json.loads(news.stdout)] == ["Meeting of the Council"]

    lines = sqlite_utils("search", str(db_after_run), "text_lines", "senators")
    assert lines.returncode == 0, lines.stderr
    assert [r["text"] for r in json.loads(lines.stdout)] == ["The senators of the delegation"]
    missing = sqlite_utils("search", str(db_after_run), "text_lines", "hidden")
    assert missing.returncode == 0 and json.loads(missing.stdout) == []
    with sqlite3.connect(db_after_run) as conn:
        (text,) = conn.execute(
            "SELECT text FROM snapshot_texts WHERE source_id = 'senate'"
        ).fetchone()
    # the visible lines of the page; script and style are not text
    assert text.splitlines() == [
        "Senate of the Republic",
        "The senators of the delegation",
        "Ivan Petrov",
        "Anna Sidorova",
    ]


def test_which_snapshot_first_said_a_word_is_one_query(tmp_path: Path, server: LocalServer) -> None:
    server.set("/a", Route(body="<html><body><p>Agenda of the session</p></body></html>"))
    server.set("/b", Route(body=SENATE))
    cfg = write_config(
        tmp_path, source_block("a", server.url("/a")) + source_block("b", server.url("/b"))
    )
    assert pawatch("--config", str(cfg), "run").returncode == 0
    # a's next version says "senators" too, and is the first to say "Newcomer"
    server.set("/a", Route(body="<html><body><p>The senators met</p><p>Farida Newcomer</p>"))
    assert pawatch("--config", str(cfg), "run").returncode == 0
    with sqlite3.connect(tmp_path / "pawatch.db") as conn:
        a_ids = [r[0] for r in conn.execute("SELECT id FROM snapshots WHERE source_id = 'a'")]

        def first(words: str) -> list[tuple[int, str]]:
            rows = conn.execute(FIRST_SAID, {"words": words}).fetchall()
            return [(r[0], r[1]) for r in rows]

        (b_id,) = conn.execute("SELECT id FROM snapshots WHERE source_id = 'b'").fetchone()
        assert first("senators") == [(b_id, "b")]  # b said it a run before a did
        assert first("newcomer") == [(a_ids[1], "a")]  # case-insensitive, a's second version
        assert first('"Ivan Petrov"') == [(b_id, "b")]  # a phrase, within one line
        assert first("agenda") == [(a_ids[0], "a")]
        assert first("hidden") == []  # a script's text is no text
        # one text row per distinct body, like bodies
        bodies = conn.execute("SELECT COUNT(*) FROM bodies").fetchone()[0]
        texts = conn.execute("SELECT COUNT(*) FROM snapshot_text").fetchone()[0]
    assert bodies == texts == 3


def test_text_is_stored_once_per_distinct_body(tmp_path: Path, server: LocalServer) -> None:
    server.set("/a", Route(body=SENATE))
    server.set("/b", Route(body=SENATE))  # the same body under two sources
    cfg = write_config(
        tmp_path, source_block("a", server.url("/a")) + source_block("b", server.url("/b"))
    )
    assert pawatch("--config", str(cfg), "run").returncode == 0
    server.set("/a", Route(body=SENATE.replace("Anna", "Olga")))
    assert pawatch("--config", str(cfg), "run").returncode == 0
    with sqlite3.connect(tmp_path / "pawatch.db") as conn:
        texts = [r[0] for r in conn.execute("SELECT text FROM snapshot_text ORDER BY rowid")]
        snapshots = conn.execute("SELECT COUNT(*) FROM snapshot_texts").fetchone()[0]
        lines = [r[0] for r in conn.execute("SELECT text FROM text_lines ORDER BY id")]
    assert len(texts) == 2 and "Olga Sidorova" in texts[1]
    assert snapshots == 3  # a, b, then a's new version: every snapshot has its text
    # the second version added its one new line; the three it shares are stored once
    assert len(lines) == 5 and lines[-1] == "Olga Sidorova"


def _record(store: Store, source_id: str, text: str) -> None:
    store.record_check(
        CheckInput(
            source_id, f"https://example.org/{source_id}", NOW, 0.1, http_status=200,
            body=f"<p>{source_id}: {text}</p>".encode(), content_type="text/html", text=text,
        )
    )  # fmt: skip


def _texts(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        bodies = dict(conn.execute("SELECT b.sha256, s.source_id FROM bodies b "
                                   "JOIN snapshots s ON s.sha256 = b.sha256"))  # fmt: skip
        return {bodies[sha]: text for sha, text in conn.execute("SELECT * FROM snapshot_text")}


def _lines(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT text FROM text_lines ORDER BY id")]


TEXTS = {
    "one": "Menu\nSenate\n\nIvan Petrov\nMenu\nFooter © 2026",  # "Menu" twice, an empty line
    "two": "Menu\nСенат\nIvan Petrov\nFooter © 2026\n",  # ends with an empty line
    "empty": "",
    "blank": "\n",  # two empty lines
    "same": "Menu",
}


def test_bodies_sharing_lines_store_each_line_once(tmp_path: Path) -> None:
    db = tmp_path / "pawatch.db"
    with Store.open(db) as store:
        store.sync_sources([SourceRow(s, f"https://example.org/{s}", "page", None)
                            for s in TEXTS], NOW)  # fmt: skip
        for source_id, text in TEXTS.items():
            _record(store, source_id, text)
    assert _texts(db) == TEXTS  # every text exactly as given
    distinct = {line for text in TEXTS.values() for line in bodytext.split_lines(text)}
    assert sorted(_lines(db)) == sorted(distinct)  # each line once
    with sqlite3.connect(db) as conn:
        ids = dict(conn.execute("SELECT b.sha256, b.line_ids FROM body_text b"))
        by_text = {t: i for i, t in conn.execute("SELECT id, text FROM text_lines")}
    menu = by_text["Menu"]
    assert sorted(ids.values()) == sorted([
        f"[{menu},{by_text['Senate']},{by_text['']},{by_text['Ivan Petrov']},{menu},"
        f"{by_text['Footer © 2026']}]",
        f"[{menu},{by_text['Сенат']},{by_text['Ivan Petrov']},{by_text['Footer © 2026']},"
        f"{by_text['']}]",
        "[]", f"[{by_text['']},{by_text['']}]", f"[{menu}]",
    ])  # fmt: skip
    # a new store (no memory of the lines) finds them in the database
    with Store.open(db) as store:
        store.sync_sources([SourceRow("later", "https://example.org/later", "page", None)], NOW)
        _record(store, "later", "Menu\nSenate\nnew line")
    assert _texts(db)["later"] == "Menu\nSenate\nnew line"
    assert len(_lines(db)) == len(distinct) + 1


def test_a_rolled_back_check_leaves_no_line_and_no_stale_id(tmp_path: Path) -> None:
    db = tmp_path / "pawatch.db"
    with Store.open(db) as store:
        store.sync_sources([SourceRow("a", "https://example.org/a", "page", None)], NOW)
        good = CheckInput(
            "a",
            "https://example.org/a",
            NOW,
            0.1,
            http_status=200,
            body=b"<p>x</p>",
            content_type="text/html",
            text="Only here\nShared",
        )
        unknown = replace_source(good, "nobody")  # no such source: the snapshot is refused
        with pytest.raises(sqlite3.IntegrityError):
            store.record_checks([(unknown, None, None)])
        assert _lines(db) == []  # its lines went with it
        # the store's memory of line ids went too: another line takes the freed id
        _record(store, "a", "Shared\nOther")
    assert _texts(db) == {"a": "Shared\nOther"}
    assert _lines(db) == ["Shared", "Other"]


def test_a_refused_commit_leaves_no_stale_id(tmp_path: Path) -> None:
    db = tmp_path / "pawatch.db"
    with Store.open(db) as store:
        store.sync_sources([SourceRow("a", "https://example.org/a", "page", None)], NOW)
        check = CheckInput(
            "a",
            "https://example.org/a",
            NOW,
            0.1,
            http_status=200,
            body=b"<p>x</p>",
            content_type="text/html",
            text="Only here\nShared",
        )
        conn = store.db.conn
        conn.execute("PRAGMA defer_foreign_keys = ON")  # the unknown source fails at COMMIT
        with pytest.raises(sqlite3.IntegrityError):
            store.record_check(replace_source(check, "nobody"))
        conn.execute("ROLLBACK")  # the commit was refused: the caller gives up the transaction
        _record(store, "a", "Shared\nOther")
    assert _texts(db) == {"a": "Shared\nOther"}
    assert _lines(db) == ["Shared", "Other"]


def replace_source(check: CheckInput, source_id: str) -> CheckInput:
    from dataclasses import replace

    return replace(check, source_id=source_id, body=b"<p>another body</p>")


def test_a_hash_collision_is_a_distinct_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every line has the same hash, the largest value: each new line takes the next free value
    # (wrapping around), and each lookup follows the same sequence comparing texts
    top = 2**63 - 1
    monkeypatch.setattr(bodytext, "line_hash", lambda line: top)
    db = tmp_path / "pawatch.db"
    with Store.open(db) as store:
        store.sync_sources([SourceRow(s, f"https://example.org/{s}", "page", None)
                            for s in [*TEXTS, "later"]], NOW)  # fmt: skip
        for source_id, text in TEXTS.items():
            _record(store, source_id, text)
    with Store.open(db) as store:  # a new store looks every line up in the database
        _record(store, "later", "Footer © 2026\nIvan Petrov\nnew line")
    texts = _texts(db)
    assert texts == {**TEXTS, "later": "Footer © 2026\nIvan Petrov\nnew line"}
    distinct = {line for text in texts.values() for line in bodytext.split_lines(text)}
    with sqlite3.connect(db) as conn:
        hashes = [r[0] for r in conn.execute("SELECT hash FROM text_lines ORDER BY id")]
    assert len(hashes) == len(distinct)  # no line stored twice, none lost
    assert hashes == [top, *range(-(2**63), -(2**63) + len(distinct) - 1)]


def test_line_hash_is_stable() -> None:
    # stored databases depend on it: a changed hash would store every known line again
    assert bodytext.line_hash("Сенат") == -3752600732805199658  # blake2b, 8 bytes: cbec1584...
    assert bodytext.split_lines("") == [] and bodytext.split_lines("a\n") == ["a", ""]


def test_migration_backfills_text_and_redeclares_news_fts(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(str(path))
    migrations.apply(db, stop_before="0009_fts_like_sqlite_utils_snapshot_text")
    assert db.table("news").detect_fts() is None  # the old declaration: invisible
    body = SENATE.encode()
    db.execute(
        "INSERT INTO bodies (sha256, size, compression, data) VALUES ('abc', ?, 'zstd', ?)",
        [len(body), compress_body(body)],
    )
    db.execute(
        "INSERT INTO sources (id, url, parser, first_seen, updated_at) "
        "VALUES ('s', 'http://x/', 'page', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
    )
    db.execute(
        "INSERT INTO news (source_id, url, title, first_seen) "
        "VALUES ('s', 'http://x/1', 'Council of the Assembly', '2026-01-01T00:00:00Z')"
    )
    db.conn.commit()
    db.close()

    with Store.open(path) as store:
        assert store.db.table("news").detect_fts() == "news_fts"
        assert store.db.table("text_lines").detect_fts() == "text_lines_fts"
        assert [r["title"] for r in store.db.table("news").search("council")] == [
            "Council of the Assembly"
        ]
        (row,) = store.db.table("text_lines").search("senators")
        assert row["text"] == "The senators of the delegation"
        (text,) = store.db.execute("SELECT text FROM snapshot_text WHERE sha256 = 'abc'").fetchone()
        assert "Ivan Petrov" in text


def test_migration_stores_existing_texts_by_line(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(str(path))
    migrations.apply(db, stop_before="0017_text_by_line")
    for i, text in enumerate(TEXTS.values()):
        db.execute("INSERT INTO bodies (sha256, size, compression, data) "
                   "VALUES (?, 0, 'zstd', x'')", [f"sha{i}"])  # fmt: skip
        db.execute("INSERT INTO snapshot_text (sha256, text) VALUES (?, ?)", [f"sha{i}", text])
    db.conn.commit()
    before = dict(db.execute("SELECT sha256, text FROM snapshot_text").fetchall())
    db.close()

    with Store.open(path) as store:
        after = dict(store.db.execute("SELECT sha256, text FROM snapshot_text").fetchall())
        names = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master")}
        meta = dict(store.db.execute("SELECT key, value FROM meta").fetchall())
        assert store.index_texts() == 0  # the migration indexed every line
    assert after == before  # every text exactly as it was
    assert not {"snapshot_text_fts", "snapshot_text_ai", "snapshot_text_ad"} & names
    assert "snapshot_text_indexed" not in meta
    distinct = {line for text in before.values() for line in bodytext.split_lines(text)}
    assert sorted(_lines(path)) == sorted(distinct)
    assert len(_search(path, "petrov")) == 1  # indexed, each line once
    found = sqlite_utils("search", str(path), "text_lines", "senate", "--csv")
    assert found.returncode == 0 and "Senate" in found.stdout


def _search(db: Path, word: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT t.text FROM text_lines_fts f JOIN text_lines t "
                "ON t.id = f.rowid WHERE text_lines_fts MATCH ?",
                (word,),
            )
        ]


def test_lines_are_indexed_in_batches_and_a_crashed_runs_lines_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pawatch.storage import store as store_module

    monkeypatch.setattr(store_module, "_INDEX_BATCH", 5)
    db = tmp_path / "pawatch.db"
    with Store.open(db) as store:
        store.sync_sources([SourceRow(s, f"https://example.org/{s}", "page", None)
                            for s in "abcd"], NOW)  # fmt: skip
        _record(store, "a", "Senator unique1\nMenu")
        assert _search(db, "unique1") == []  # stored, not yet in the index (a run's end does it)
        _record(store, "b", "Senator unique2\nMenu\nSenator unique3")
        _record(store, "c", "Senator unique4\nMenu")  # the fifth new line: a batch
        assert len(_search(db, "senator")) == 4  # indexed inside the last check's transaction
        _record(store, "d", "Senator unique5\nMenu")  # then the process dies before the run's end
    assert _search(db, "unique5") == []
    with Store.open(db) as store:
        assert store.index_texts() == 1  # the next run's end catches up
        assert store.index_texts() == 0
    assert _search(db, "unique5") == ["Senator unique5"]
    assert _search(db, "menu") == ["Menu"]  # each line once in the index too
    # the index stays declared the way sqlite-utils declares it: its search finds the lines
    found = sqlite_utils("search", str(db), "text_lines", "unique1", "--csv")
    assert found.returncode == 0 and "Senator unique1" in found.stdout


def test_a_body_of_many_new_lines(tmp_path: Path) -> None:
    text = "\n".join(f"line {i}" for i in range(1000))  # several inserts of new lines
    db = tmp_path / "pawatch.db"
    with Store.open(db) as store:
        store.sync_sources([SourceRow("a", "https://example.org/a", "page", None)], NOW)
        _record(store, "a", text)
        assert store.index_texts() == 1000
    assert _texts(db) == {"a": text}
    assert _search(db, '"line 999"') == ["line 999"]
