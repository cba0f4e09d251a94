"""Bounded inputs and hostile pages through the real components: parse time limits (worker
processes killed and replaced), an element bound, a gzip bomb, a wrongly labelled charset and
a redirect to another host, each served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest

from pawatch.config import ConfigError
from pawatch.demo.localserver import LocalServer, Route
from pawatch.pipeline import run_once
from pawatch.prepare import parse_body
from pawatch.scraper.errors import DecodeError, TooLarge
from pawatch.scraper.fetch import Fetcher
from pawatch.scraper.parsers import ParseError, get_parser
from pawatch.scraper.parsers.records import PageText, text_digest
from pawatch.scraper.parsers.text import MAX_ELEMENTS, parse_html
from pawatch.settings import load_settings, settings_from_text
from pawatch.storage import Store
from pawatch.workers import WorkerPool, WorkerTimeout
from tests.conftest import source_block, write_config
from tests.test_cli import pawatch

GOOD = "<html><body><h1>Делегация</h1><p>Состав: 5 депутатов</p></body></html>"


def nested(depth: int) -> str:
    return "<html><body>" + "<div>" * depth + "deep" + "</div>" * depth + "</body></html>"


def db_rows(path: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    with Store.open(path) as store:
        return [tuple(r) for r in store.db.conn.execute(sql, args).fetchall()]


# -- parse time and size bounds ----------------------------------------------------------


def test_deeply_nested_pages_are_parse_broken_and_the_run_goes_on(
    tmp_path: Path, server: LocalServer
) -> None:
    # 400,000 nested divs (4.4 MB, under max_bytes) made `run` spend minutes in the parser;
    # 40,000 (440 KB, under the element bound) take the HTML parser many seconds here
    server.set("/deep400k", Route(body=nested(400_000)))
    server.set("/deep40k", Route(body=nested(40_000)))
    server.set("/good", Route(body=GOOD))
    sources = "".join(source_block(n, server.url(f"/{n}")) for n in ("deep400k", "deep40k"))
    sources += source_block("good", server.url("/good"))
    limit = 1.0
    cfg = write_config(tmp_path, sources, parse_timeout=limit)
    start = time.monotonic()
    proc = pawatch("--config", str(cfg), "run", "--format", "json", timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["counts"]["new"] == 3
    assert sorted(summary["broken"]) == ["deep400k", "deep40k"]
    assert summary["broken"]["deep40k"] == f"parse took longer than {limit:g} s"
    assert "elements" in summary["broken"]["deep400k"]
    # the limit plus start-up and a margin for a loaded machine; unbounded, it took minutes
    assert elapsed < limit + 30, elapsed
    db = str(tmp_path / "pawatch.db")
    kinds = db_rows(db, "SELECT source_id, kind FROM events ORDER BY source_id")
    assert kinds == [("deep400k", "parse_broken"), ("deep40k", "parse_broken")]
    # the body is stored all the same (a later parser may read it)
    assert db_rows(db, "SELECT COUNT(*) FROM snapshots") == [(3,)]
    status = pawatch("--config", str(cfg), "status")
    assert "deep40k: cannot read the page: parse took longer than 1 s" in status.stdout


def test_a_worker_over_its_time_is_killed_and_replaced() -> None:
    async def scenario() -> None:
        pool = WorkerPool(1, timeout=0.5)
        try:
            first = await pool.run(os.getpid)
            with pytest.raises(WorkerTimeout, match=r"longer than 0\.5 s"):
                await pool.run(time.sleep, 30)
            assert pool.replaced == 1
            second = await pool.run(os.getpid)
            assert second != first and second != os.getpid()
            with pytest.raises(ProcessLookupError):
                os.kill(first, 0)  # the stuck worker is gone, not left spinning
            assert await pool.run(sum, [1, 2, 3]) == 6
            with pytest.raises(ZeroDivisionError):  # an error in the call is the caller's
                await pool.run(divmod, 1, 0)
            assert pool.replaced == 1
        finally:
            pool.close()

    asyncio.run(scenario())


def test_a_page_of_links_beyond_the_element_bound_is_a_parse_failure() -> None:
    links = "".join(f'<a href="/p/{i}">Link {i}</a>' for i in range(200_000))  # ~5 MB
    html = f"<html><body>{links}</body></html>"
    assert len(html) > 4_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ParseError, match=f"more than {MAX_ELEMENTS}"):
            parse_html(html)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # refused before a tree or a Python object per link is built
    spec = get_parser("page")
    source = settings_from_text(
        '[[sources]]\nid = "links"\nurl = "http://127.0.0.1/"\nparser = "page"\n'
    ).sources[0]
    parsed = parse_body(source, spec, html.encode(), "text/html; charset=utf-8", "http://x/")
    assert parsed.facts is None and parsed.error is not None and "elements" in parsed.error


@pytest.mark.parametrize("value", ["0", "0.01", "nan", "inf", "601", '"5"', "true"])
def test_parse_timeout_out_of_range_is_refused_in_one_line(value: str) -> None:
    with pytest.raises(ConfigError, match="parse_timeout") as info:
        settings_from_text(f"[http]\nparse_timeout = {value}\n")
    assert "\n" not in str(info.value)


# -- decompression bomb -------------------------------------------------------------------


def test_a_gzip_bomb_fails_as_too_large_within_a_few_max_bytes(server: LocalServer) -> None:
    max_bytes = 1_000_000
    bomb = gzip.compress(b"\0" * 100_000_000, compresslevel=9)  # ~100 KB on the wire
    assert len(bomb) < max_bytes
    fine = "<p>" + "Делегация " * 20_000 + "</p>"
    deflated = zlib.compress(fine.encode())
    server.set("/robots.txt", Route(status=404))
    for i in range(8):
        server.set(f"/bomb{i}", Route(body=bomb, headers={"Content-Encoding": "gzip"}))
    server.set(
        "/fine", Route(body=gzip.compress(fine.encode()), headers={"Content-Encoding": "gzip"})
    )
    server.set("/deflate", Route(body=deflated, headers={"Content-Encoding": "deflate"}))
    text = "[http]\nper_host_delay = 0\nper_host_concurrency = 8\nretries = 0\n"
    text += f"max_bytes = {max_bytes}\n"
    text += "".join(source_block(f"bomb{i}", server.url(f"/bomb{i}")) for i in range(8))
    text += source_block("fine", server.url("/fine")) + source_block("def", server.url("/deflate"))
    settings = settings_from_text(text)

    async def fetch_all() -> list[object]:
        async with Fetcher(settings.http, settings.sources) as fetcher:
            return await asyncio.gather(
                *(fetcher.fetch(s) for s in settings.sources), return_exceptions=True
            )

    tracemalloc.start()
    try:
        results = asyncio.run(fetch_all())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    bombs, (plain, inflated) = results[:8], results[8:]
    assert all(isinstance(r, TooLarge) and "once decoded" in str(r) for r in bombs), bombs
    assert getattr(plain, "body", None) == fine.encode()
    assert getattr(inflated, "body", None) == fine.encode()
    # 8 bombs at once of 100 MB each: each holds at most max_bytes (+ a chunk) while read
    assert peak < 8 * 3 * max_bytes, peak


def test_a_compressed_body_cut_short_or_followed_by_data_is_a_decode_error(
    server: LocalServer,
) -> None:
    """A gzip body cut mid-stream decodes to a shorter page without a zlib error: read as
    complete, a roster cut that way would lose members. So would a second gzip member."""
    roster = "<ul>" + "".join(f"<li>Депутат {i}</li>" for i in range(400)) + "</ul>"
    whole = gzip.compress(roster.encode())
    server.set("/robots.txt", Route(status=404))
    server.set("/whole", Route(body=whole, headers={"Content-Encoding": "gzip"}))
    server.set("/cut", Route(body=whole[: len(whole) // 2], headers={"Content-Encoding": "gzip"}))
    server.set("/extra", Route(body=whole + whole, headers={"Content-Encoding": "gzip"}))
    text = "[http]\nper_host_delay = 0\nretries = 0\n"
    text += "".join(
        source_block(name, server.url(f"/{name}")) for name in ("whole", "cut", "extra")
    )
    settings = settings_from_text(text)

    async def fetch_all() -> list[object]:
        async with Fetcher(settings.http, settings.sources) as fetcher:
            return await asyncio.gather(
                *(fetcher.fetch(s) for s in settings.sources), return_exceptions=True
            )

    whole_result, cut, extra = asyncio.run(fetch_all())
    assert getattr(whole_result, "body", None) == roster.encode()
    for failed in (cut, extra):
        assert isinstance(failed, DecodeError), failed
        assert "cut short or has data after its end" in str(failed)


def test_a_gzip_bomb_is_recorded_as_too_large(tmp_path: Path, server: LocalServer) -> None:
    bomb = gzip.compress(b"<p>" + b"a" * 50_000_000, compresslevel=9)
    server.set("/bomb", Route(body=bomb, headers={"Content-Encoding": "gzip"}))
    cfg = write_config(tmp_path, source_block("bomb", server.url("/bomb")), max_bytes=500_000)
    settings = load_settings(cfg)
    with Store.open(settings.storage.path) as store:
        summary = run_once(settings, settings.sources, store)
    assert [(o.source_id, o.outcome, o.error_kind) for o in summary.outcomes] == [
        ("bomb", "failed", "too_large")
    ]


# -- text from the web is data ------------------------------------------------------------


def test_windows_1251_labelled_utf8_is_decoded_by_detection(
    tmp_path: Path, server: LocalServer
) -> None:
    text = (
        "<html><body><h1>Делегация Кыргызской Республики</h1>"
        "<p>Руководитель делегации: Иванов Иван Иванович</p></body></html>"
    )
    label = "text/html; charset=utf-8"
    server.set("/d", Route(body=text.encode("cp1251"), content_type=label))
    cfg = write_config(tmp_path, source_block("d", server.url("/d")))
    settings = load_settings(cfg)
    parsed = get_parser("page").func(text, server.url("/d"), {})
    expected = text_digest(next(r.text for r in parsed.records if isinstance(r, PageText)))
    with Store.open(settings.storage.path) as store:
        assert run_once(settings, settings.sources, store).outcomes[0].outcome == "new"
        facts = store.db.conn.execute("SELECT value FROM facts WHERE source_id = 'd'").fetchall()
        assert [tuple(f) for f in facts] == [(expected,)]
        # the site fixes its encoding: the same text, so no change is reported
        server.set("/d", Route(body=text.encode("utf-8"), content_type=label))
        assert run_once(settings, settings.sources, store).outcomes[0].outcome == "changed"
        assert store.db.conn.execute("SELECT kind FROM events").fetchall() == []
        facts = store.db.conn.execute(
            "SELECT value FROM facts WHERE source_id = 'd' AND ended_at IS NULL"
        ).fetchall()
        assert [tuple(f) for f in facts] == [(expected,)]


def test_a_redirect_to_another_host_is_one_source_moved_event(tmp_path: Path) -> None:
    with LocalServer("127.0.0.1") as old, LocalServer("127.0.0.2") as new:
        new.set("/delegation", Route(body=GOOD))
        old.set("/delegation", Route(status=301, headers={"Location": new.url("/delegation")}))
        old.set("/same", Route(status=302, headers={"Location": old.url("/same-page")}))
        old.set("/same-page", Route(body=GOOD))
        sources = source_block("moved", old.url("/delegation"))
        sources += source_block("local", old.url("/same"))
        cfg = write_config(tmp_path, sources)
        first = pawatch("--config", str(cfg), "run", "--format", "json")
        assert first.returncode == 0, first.stderr
        second = pawatch("--config", str(cfg), "run", "--format", "json")
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout)["counts"]["unchanged"] == 2
        status = pawatch("--config", str(cfg), "status")
    db = str(tmp_path / "pawatch.db")
    assert db_rows(db, "SELECT source_id, kind, old, new FROM events") == [
        ("moved", "source_moved", old.url("/delegation"), new.url("/delegation"))
    ]
    logged = db_rows(db, "SELECT source_id, final_url FROM fetch_log ORDER BY id")
    assert sorted(logged) == sorted(
        [("moved", new.url("/delegation")), ("local", old.url("/same-page"))] * 2
    )
    assert f"moved: redirected to {new.url('/delegation')}" in status.stdout


def test_workers_die_with_the_process_that_started_them(tmp_path: Path) -> None:
    """A `run` SIGKILLed while a worker is stuck in a page leaves no worker behind (it would
    hold a copy of the database lock's file for as long as the parse lasts)."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "stuck.py"
    script.write_text(
        "import asyncio, time\n"
        "from pawatch.workers import WorkerPool\n"
        "async def main():\n"
        "    pool = WorkerPool(1, timeout=600)\n"
        "    task = asyncio.ensure_future(pool.run(time.sleep, 600))\n"
        "    await asyncio.sleep(0.5)\n"
        "    print(*pool.pids(), flush=True)\n"
        "    await task\n"
        "asyncio.run(main())\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        worker = int(proc.stdout.readline())
        os.kill(worker, 0)  # alive while its parent lives
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its SIGKILLed parent")


def test_re_deriving_facts_after_a_config_change_is_bounded_too(
    tmp_path: Path, server: LocalServer
) -> None:
    # the body of a page whose parse timed out is stored; a change of the source's settings
    # re-reads every stored body: that must not stall the run either
    server.set("/deep", Route(body=nested(49_000)))
    limit = 1.0
    cfg = write_config(tmp_path, source_block("deep", server.url("/deep")), parse_timeout=limit)
    settings = load_settings(cfg)
    with Store.open(settings.storage.path) as store:
        first = run_once(settings, settings.sources, store)
        assert [o.parse_error for o in first.outcomes] == [f"parse took longer than {limit:g} s"]
        block = source_block("deep", server.url("/deep"), encoding="utf-8")  # a new fingerprint
        settings = load_settings(write_config(tmp_path, block, parse_timeout=limit))
        start = time.monotonic()
        second = run_once(settings, settings.sources, store)
        elapsed = time.monotonic() - start
    assert [o.outcome for o in second.outcomes] == ["unchanged"]
    assert second.broken and "longer than 1 s" in str(second.broken[0].parse_error)
    assert elapsed < 8 * limit, elapsed  # an unbounded re-read takes 12 s and more here


def test_the_reparse_command_parses_within_the_time_limit(
    tmp_path: Path, server: LocalServer
) -> None:
    # `pawatch reparse` re-reads every stored body: a stored page whose parse timed out in
    # `run` becomes a parse failure again there, instead of a parse without any bound (which
    # reads the page after 12 s and more here, and finds its text)
    server.set("/deep", Route(body=nested(49_000)))
    limit = 1.0
    cfg = write_config(tmp_path, source_block("deep", server.url("/deep")), parse_timeout=limit)
    assert pawatch("--config", str(cfg), "run").returncode == 1  # broken: parse timed out
    db = str(tmp_path / "pawatch.db")
    proc = pawatch("--config", str(cfg), "reparse")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "deep: 0 fact interval(s) from stored snapshots"
    assert db_rows(db, "SELECT parse_status, parse_error FROM source_state") == [
        ("broken", f"parse took longer than {limit:g} s")
    ]
    assert db_rows(db, "SELECT COUNT(*) FROM facts") == [(0,)]
