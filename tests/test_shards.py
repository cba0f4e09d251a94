"""Fetch processes (``pawatch.shards``): a large run's checks spread over processes record
exactly what one process records, stay polite per host, and keep parsing bounded in time."""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest

from pawatch.config import HttpSettings, Source
from pawatch.demo.localserver import LocalServer, Route
from pawatch.pipeline import run_once
from pawatch.settings import load_settings
from pawatch.shards import plan_shards
from pawatch.storage import Store
from tests.conftest import source_block, write_config


def nested(depth: int) -> str:
    return "<html><body>" + "<div>" * depth + "deep" + "</div>" * depth + "</body></html>"


def page(i: int, generation: int = 0) -> str:
    rows = "".join(f"<li>Депутат {i}-{k} Иванов Иван</li>" for k in range(5 + generation))
    return (
        f"<html><head><title>Page {i}</title></head><body><h1>Делегация {i}</h1>"
        f"<p>Генерация {generation}</p><ul>{rows}</ul><script>var x = {i};</script></body></html>"
    )


def sources_on(hosts: dict[str, int]) -> list[Source]:
    return [
        Source(id=f"{host}-{i}", url=f"http://{host}/p/{i}", parser="page")
        for host, count in hosts.items()
        for i in range(count)
    ]


# -- the plan ----------------------------------------------------------------------------

PLANS = [
    # (per_host_concurrency, per_host_delay, sources per host, processes, expected shards)
    (10, 0.0, {"a": 100}, 2, 2),  # one busy host, no delay: dealt out, concurrency 5 + 5
    (3, 0.0, {"a": 100}, 2, 2),  # odd concurrency: 2 + 1
    (10, 1.0, {"a": 100}, 2, 1),  # a delay between requests: the host stays whole
    (1, 0.0, {"a": 100}, 2, 1),  # one request at a time: the host stays whole
    (2, 1.0, {"a": 60, "b": 50, "c": 10}, 2, 2),  # whole hosts, balanced
    (10, 0.0, {"a": 40}, 2, 1),  # too few sources to be worth a process
    (10, 0.0, {"a": 400}, 4, 4),
]


@pytest.mark.parametrize(("concurrency", "delay", "hosts", "processes", "count"), PLANS)
def test_a_plan_never_lets_a_host_see_more_than_its_settings_allow(
    concurrency: int, delay: float, hosts: dict[str, int], processes: int, count: int
) -> None:
    http = HttpSettings(
        per_host_concurrency=concurrency, per_host_delay=delay, global_concurrency=16
    )
    sources = sources_on(hosts)
    shards = plan_shards(http, sources, processes)
    assert len(shards) == count
    # every source exactly once
    planned = [s.id for shard in shards for s in shard.sources]
    assert sorted(planned) == sorted(s.id for s in sources)
    # the processes' global limits add up to the configured one (never more)
    assert sum(s.http.global_concurrency for s in shards) == 16
    for host in hosts:
        holders = [s for s in shards if any(src.host == host for src in s.sources)]
        # all processes together never exceed the host's concurrency
        assert sum(s.http.per_host_concurrency for s in holders) <= concurrency
        if delay > 0:  # a spacing between requests is only kept by one process
            assert len(holders) == 1
        assert all(s.http.per_host_delay == delay for s in holders)
    if count > 1:  # balanced within one host's worth of sources
        sizes = [len(s.sources) for s in shards]
        assert max(sizes) - min(sizes) <= max(hosts.values())


def test_explicit_processes_split_even_a_small_run() -> None:
    http = HttpSettings(per_host_concurrency=4, per_host_delay=0)
    assert len(plan_shards(http, sources_on({"a": 6}), 2)) == 1
    assert len(plan_shards(http, sources_on({"a": 6}), 2, min_sources=1)) == 2


# -- runs --------------------------------------------------------------------------------


def snapshot_of_db(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as conn:
        return {
            "snapshots": sorted(conn.execute("SELECT source_id, sha256, url FROM snapshots")),
            "facts": sorted(
                conn.execute(
                    "SELECT source_id, subject, attribute, value, ended_at IS NULL FROM facts"
                )
            ),
            "events": sorted(conn.execute("SELECT source_id, kind, old, new FROM events")),
            "texts": sorted(conn.execute("SELECT sha256, text FROM snapshot_text")),
            "outcomes": sorted(conn.execute("SELECT source_id, outcome FROM fetch_log")),
        }


def test_fetch_processes_record_what_one_process_records(
    tmp_path: Path, server: LocalServer
) -> None:
    count = 12
    for i in range(count):
        server.set(f"/p/{i}", Route(body=page(i), etag=f'"g0-{i}"'))
    blocks = "".join(source_block(f"p{i}", server.url(f"/p/{i}")) for i in range(count))
    runs = {}
    for processes in (1, 3):
        folder = tmp_path / f"run{processes}"
        folder.mkdir()
        cfg = write_config(folder, blocks, fetch_processes=processes)
        settings = load_settings(cfg)
        for i in range(count):
            server.set(f"/p/{i}", Route(body=page(i), etag=f'"g0-{i}"'))
        with Store.open(settings.storage.path) as store:
            first = run_once(settings, settings.sources, store)
            for i in (2, 7):  # two pages change; the others answer 304
                server.set(f"/p/{i}", Route(body=page(i, 1), etag=f'"g1-{i}"'))
            second = run_once(settings, settings.sources, store)
        assert first.as_json()["counts"]["new"] == count
        assert second.as_json()["sources"]["changed"] == ["p2", "p7"]
        assert second.as_json()["counts"]["not_modified"] == count - 2
        runs[processes] = snapshot_of_db(folder / "pawatch.db")
    assert runs[3] == runs[1]
    assert len(runs[1]["events"]) == 2


def test_fetch_processes_keep_a_hosts_concurrency(tmp_path: Path, server: LocalServer) -> None:
    for i in range(40):
        server.set(f"/p/{i}", Route(body=page(i), delay=0.05))
    blocks = "".join(source_block(f"p{i}", server.url(f"/p/{i}")) for i in range(40))
    cfg = write_config(tmp_path, blocks, fetch_processes=2, per_host_concurrency=3)
    settings = load_settings(cfg)
    with Store.open(settings.storage.path) as store:
        summary = run_once(settings, settings.sources, store)
    assert summary.as_json()["counts"]["new"] == 40
    # both processes fetched, together within 3
    assert 2 <= server.max_active <= 3, (server.max_active, server.requests)


def test_a_parse_past_the_limit_kills_its_fetch_process_and_the_run_goes_on(
    tmp_path: Path, server: LocalServer
) -> None:
    limit = 1.0
    server.set("/deep", Route(body=nested(49_000)))  # under the element bound, slow
    for i in range(8):
        server.set(f"/p/{i}", Route(body=page(i)))
    blocks = source_block("deep", server.url("/deep")) + "".join(
        source_block(f"p{i}", server.url(f"/p/{i}")) for i in range(8)
    )
    cfg = write_config(tmp_path, blocks, fetch_processes=2, parse_timeout=limit)
    settings = load_settings(cfg)
    start = time.monotonic()
    with Store.open(settings.storage.path) as store:
        summary = run_once(settings, settings.sources, store)
        stored = store.db.conn.execute(
            "SELECT COUNT(*) FROM snapshots WHERE source_id = 'deep'"
        ).fetchone()[0]
    elapsed = time.monotonic() - start
    result = summary.as_json()
    assert result["broken"] == {"deep": f"parse took longer than {limit:g} s"}
    assert result["counts"]["new"] == 9 and result["counts"]["failed"] == 0
    assert summary.replaced == 1
    assert stored == 1  # the page's body is kept, as for a parse in a worker
    assert elapsed < limit + 8, elapsed  # minutes without the bound


def _dies_on_boom(original):  # type: ignore[no-untyped-def]
    def analyse(source, spec, result, previous, same):  # type: ignore[no-untyped-def]
        if source.id == "boom":
            os._exit(9)  # as a parser crashing the interpreter would
        return original(source, spec, result, previous, same)

    return analyse


def test_a_fetch_process_that_dies_mid_parse_is_replaced(
    tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pawatch.shards

    monkeypatch.setattr(pawatch.shards, "analyse", _dies_on_boom(pawatch.shards.analyse))
    server.set("/boom", Route(body=page(99)))
    for i in range(10):
        server.set(f"/p/{i}", Route(body=page(i), delay=0.02))
    blocks = source_block("boom", server.url("/boom")) + "".join(
        source_block(f"p{i}", server.url(f"/p/{i}")) for i in range(10)
    )
    cfg = write_config(tmp_path, blocks, fetch_processes=2)
    settings = load_settings(cfg)
    with Store.open(settings.storage.path) as store:
        summary = run_once(settings, settings.sources, store)
    result = summary.as_json()
    assert set(result["broken"]) == {"boom"}
    assert "could not finish" in result["broken"]["boom"]
    assert "exit code 9" in result["broken"]["boom"]
    assert result["counts"]["new"] == 11 and result["counts"]["failed"] == 0
    assert summary.replaced == 1


def test_a_shard_keeps_the_configured_delay_whole() -> None:
    http = HttpSettings(per_host_concurrency=4, per_host_delay=0.5)
    shards = plan_shards(http, sources_on({"a": 80, "b": 80}), 2)
    assert [sorted({s.host for s in shard.sources}) for shard in shards] in (
        [["a"], ["b"]],
        [["b"], ["a"]],
    )
    assert all(shard.http == replace(http, global_concurrency=8) for shard in shards)


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text(encoding="ascii")
        found.update(int(p) for p in text.split())
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
@pytest.mark.usefixtures("sigint_default")
def test_no_fetch_process_outlives_an_interrupted_run(
    tmp_path: Path, server: LocalServer, signal_name: str
) -> None:
    import signal
    import subprocess
    import sys

    for i in range(40):
        server.set(f"/p/{i}", Route(body=page(i), delay=2.0))  # slow: the run is mid-way
    blocks = "".join(source_block(f"p{i}", server.url(f"/p/{i}")) for i in range(40))
    cfg = write_config(tmp_path, blocks, fetch_processes=2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pawatch", "--config", str(cfg), "run", "--no-deliver"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        children: set[int] = set()
        while time.monotonic() < deadline and len(children) < 2:
            time.sleep(0.1)
            children = _children(proc.pid)
        assert len(children) >= 2, "the run did not start its fetch processes"
        proc.send_signal(getattr(signal, signal_name))
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(c) for c in children):
        time.sleep(0.1)
    assert not any(_alive(c) for c in children), "a fetch process outlived its run"
    assert proc.returncode != 0


def test_sources_no_fetch_process_could_check_are_failed_checks(
    tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pawatch.shards

    async def broken(*args: object) -> None:
        raise RuntimeError("cannot start")

    monkeypatch.setattr(pawatch.shards, "_check_all", broken)
    for i in range(6):
        server.set(f"/p/{i}", Route(body=page(i)))
    blocks = "".join(source_block(f"p{i}", server.url(f"/p/{i}")) for i in range(6))
    cfg = write_config(tmp_path, blocks, fetch_processes=2)
    settings = load_settings(cfg)
    with Store.open(settings.storage.path) as store:
        summary = run_once(settings, settings.sources, store)
    result = summary.as_json()
    assert result["counts"]["failed"] == 6  # every source accounted for, none lost
    assert all("cannot start" in e for e in result["errors"].values())
    assert server.requests == []
