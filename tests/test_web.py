"""``pawatch serve``: Datasette on a real pawatch database, read over HTTP (HTML and JSON).

Skipped when Datasette (the ``pawatch[web]`` extra) is not installed.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pawatch.cli.web import datasette_metadata
from pawatch.demo.smtpcapture import free_port
from pawatch.storage import Store
from tests.test_cli import ROOT, pawatch

pytest.importorskip("datasette")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    out = tmp_path_factory.mktemp("web")
    demo = pawatch("demo", "--dir", str(out))
    assert demo.returncode == 0, demo.stderr
    db = out / "pawatch.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAWATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pawatch.cli", "--db", str(db), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/-/versions.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "datasette did not start"
            time.sleep(0.2)
        yield base, db
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # served read-only


def get_json(url: str) -> list[dict[str, object]]:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, (url, response.text[:500])
    rows = response.json()
    assert isinstance(rows, list)
    return rows


def get_html(url: str) -> str:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, (url, response.text[:500])
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def test_changes_per_delegation(served: tuple[str, Path]) -> None:
    base, _ = served
    rows = get_json(f"{base}/pawatch/events.json?delegation=KG&_shape=array")
    assert rows and {r["delegation"] for r in rows} == {"KG"}
    assert any(r["kind"] == "composition" and r["new"] == "7" for r in rows)
    html = get_html(f"{base}/pawatch/events?delegation=KG")
    assert "Change and health events" in html  # the table's description
    assert "facet-delegation" in html or "delegation (" in html  # facet shown
    canned = get_json(f"{base}/pawatch/changes_of_delegation.json?delegation=kg&_shape=array")
    assert len(canned) == len(rows)
    assert "The changes of one delegation" in get_html(
        f"{base}/pawatch/changes_of_delegation?delegation=KG"
    )


def test_a_snapshots_text_and_search(served: tuple[str, Path]) -> None:
    base, db = served
    with sqlite3.connect(db) as conn:
        (snapshot_id,) = conn.execute(
            "SELECT id FROM snapshots WHERE source_id = 'demo-country-kg' ORDER BY id DESC"
        ).fetchone()
    (row,) = get_json(
        f"{base}/pawatch/text_of_snapshot.json?snapshot_id={snapshot_id}&_shape=array"
    )
    assert "Farida Newcomer" in str(row["text"])
    assert "Farida Newcomer" in get_html(
        f"{base}/pawatch/text_of_snapshot?snapshot_id={snapshot_id}"
    )
    found = get_json(f"{base}/pawatch/text_lines.json?_search=Newcomer&_shape=array")
    assert len(found) == 1 and "Farida Newcomer" in str(found[0]["text"])
    assert "Farida Newcomer" in get_html(f"{base}/pawatch/text_lines?_search=Newcomer")
    with sqlite3.connect(db) as conn:  # the first snapshot showing her, whatever its source
        first = conn.execute(
            "SELECT s.id FROM snapshots s JOIN snapshot_text t ON t.sha256 = s.sha256 "
            "WHERE t.text LIKE '%Farida Newcomer%' ORDER BY s.first_seen, s.id LIMIT 1"
        ).fetchone()[0]
    (said,) = get_json(f"{base}/pawatch/first_snapshot_saying.json?words=newcomer&_shape=array")
    assert said["snapshot_id"] == first
    news = get_json(f"{base}/pawatch/news.json?_search=Council&_shape=array")
    assert [n["title"] for n in news] == ["Meeting of the Council of the Assembly"]


def test_source_health(served: tuple[str, Path]) -> None:
    base, _ = served
    rows = get_json(f"{base}/pawatch/source_health.json?_shape=array")
    assert len(rows) == 5 and {r["health"] for r in rows} == {"ok"}
    assert "demo-kenesh-deputies" in get_html(f"{base}/pawatch/source_health")


def test_disagreements(served: tuple[str, Path]) -> None:
    base, db = served
    with sqlite3.connect(db) as conn:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = 'disagreements'"
        ).fetchone()
    if not exists:
        pytest.skip("no disagreements view in this schema yet")
    get_json(f"{base}/pawatch/disagreements.json?_shape=array")
    get_html(f"{base}/pawatch/disagreements")


def test_metadata_describes_every_table_and_view(tmp_path: Path) -> None:
    with Store.open(tmp_path / "fresh.db") as store:
        names = [
            r[0]
            for r in store.db.conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
            )
        ]
    shadow = ("_fts_config", "_fts_data", "_fts_docsize", "_fts_idx")
    names = [n for n in names if not n.endswith(shadow)]
    tables = datasette_metadata("fresh")["databases"]["fresh"]["tables"]
    missing = [n for n in names if not tables.get(n, {}).get("description")]
    assert not missing, f"add a description to pawatch/datasette.json for {missing}"


def test_no_canned_query_hides_a_table() -> None:
    database = datasette_metadata("pawatch")["databases"]["pawatch"]
    assert not set(database["queries"]) & set(database["tables"])
