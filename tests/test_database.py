"""The database as analysts query it: full-text search that sqlite-utils and Datasette see, and
the readable text of every stored page (``snapshot_text``)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlite_utils import Database

from pawatch.demo.localserver import LocalServer, Route
from pawatch.storage import Store
from pawatch.storage.schema import migrations
from pawatch.storage.store import compress_body
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


def test_sqlite_utils_search_news_and_snapshot_text(db_after_run: Path) -> None:
    news = sqlite_utils("search", str(db_after_run), "news", "Council", "-c", "title")
    assert news.returncode == 0, news.stderr
    assert [r["title"] for r in json.loads(news.stdout)] == ["Meeting of the Council"]

    pages = sqlite_utils("search", str(db_after_run), "snapshot_text", "senators")
    assert pages.returncode == 0, pages.stderr
    (row,) = json.loads(pages.stdout)
    # the visible lines of the page; script and style are not text
    assert row["text"].splitlines() == [
        "Senate of the Republic",
        "The senators of the delegation",
        "Ivan Petrov",
        "Anna Sidorova",
    ]
    missing = sqlite_utils("search", str(db_after_run), "snapshot_text", "hidden")
    assert json.loads(missing.stdout) == []


def test_which_snapshot_first_said_a_word_is_one_query(db_after_run: Path) -> None:
    with sqlite3.connect(db_after_run) as conn:
        rows = conn.execute(
            "SELECT snapshot_id, source_id FROM snapshot_texts WHERE sha256 IN ("
            "SELECT sha256 FROM snapshot_text WHERE rowid IN ("
            "SELECT rowid FROM snapshot_text_fts WHERE snapshot_text_fts MATCH 'senators')) "
            "ORDER BY first_seen LIMIT 1"
        ).fetchall()
        # one text row per distinct body, like bodies
        bodies = conn.execute("SELECT COUNT(*) FROM bodies").fetchone()[0]
        texts = conn.execute("SELECT COUNT(*) FROM snapshot_text").fetchone()[0]
    assert [source for _, source in rows] == ["senate"]
    assert bodies == texts == 2


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
    assert len(texts) == 2 and "Olga Sidorova" in texts[1]
    assert snapshots == 3  # a, b, then a's new version: every snapshot has its text


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
        assert store.db.table("snapshot_text").detect_fts() == "snapshot_text_fts"
        assert [r["title"] for r in store.db.table("news").search("council")] == [
            "Council of the Assembly"
        ]
        (row,) = store.db.table("snapshot_text").search("senators")
        assert row["sha256"] == "abc" and "Ivan Petrov" in row["text"]


def _search(db: Path, word: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT t.sha256 FROM snapshot_text_fts f JOIN snapshot_text t "
                "ON t.rowid = f.rowid WHERE snapshot_text_fts MATCH ?",
                (word,),
            )
        ]


def test_texts_are_indexed_in_batches_and_a_crashed_runs_texts_later(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from pawatch.storage import SourceRow
    from pawatch.storage.store import _INDEX_BATCH, CheckInput

    db = tmp_path / "pawatch.db"
    now = datetime(2026, 12, 1, tzinfo=UTC)

    def check(store: Store, i: int) -> None:
        body = f"<html><body><p>Senator number{i} unique{i}</p></body></html>".encode()
        url = f"https://example.org/{i}"
        store.record_check(
            CheckInput(f"s{i}", url, now, 0.1, http_status=200, body=body, content_type="text/html")
        )

    with Store.open(db) as store:
        store.sync_sources([SourceRow(f"s{i}", f"https://example.org/{i}", "page", None)
                            for i in range(_INDEX_BATCH + 3)], now)  # fmt: skip
        check(store, 0)
        assert _search(db, "unique0") == []  # stored, not yet in the index (a run's end does it)
        for i in range(1, _INDEX_BATCH):
            check(store, i)
        # the batch filled up inside the last check's transaction: all of it searchable
        assert len(_search(db, "senator")) == _INDEX_BATCH
        check(store, _INDEX_BATCH)  # then the process dies before the run's end
    assert _search(db, f"unique{_INDEX_BATCH}") == []
    with Store.open(db) as store:
        assert store.index_texts() == 1  # the next run's end catches up
        assert store.index_texts() == 0
    assert len(_search(db, f"unique{_INDEX_BATCH}")) == 1
    # the index stays declared the way sqlite-utils declares it: its search finds the text
    found = sqlite_utils("search", str(db), "snapshot_text", "unique1", "--csv")
    assert found.returncode == 0 and "unique1" in found.stdout
