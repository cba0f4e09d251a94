"""The pipeline end to end against a real HTTP server on 127.0.0.1 and a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pawatch.demo.localserver import LocalServer, Route
from pawatch.pipeline import run_once
from pawatch.settings import load_settings
from pawatch.storage import CheckInput, StorageError, Store
from tests.conftest import source_block, write_config

PAGE = "<html><body><h1>Delegations</h1><p>Version {n}</p></body></html>"


def rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in store.db.conn.execute(sql).fetchall()]


def test_faults_become_typed_failures_and_spare_the_other_sources(
    tmp_path: Path, server: LocalServer
) -> None:
    server.set("/ok", Route(body=PAGE.format(n=1)))
    server.set("/flaky", Route(sequence=[Route(status=500), Route(body=PAGE.format(n=1))]))
    server.set("/gone", Route(status=404))
    server.set("/slow", Route(body="late", delay=3))
    server.set("/reset", Route(fault="reset"))
    server.set("/truncated", Route(body="x" * 1000, fault="truncate"))
    server.set("/huge", Route(fault="huge"))
    server.set("/loop", Route(fault="redirect_loop"))
    server.set("/private/page", Route(body="secret"))
    server.set(
        "/robots.txt", Route(body="User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    )
    server.set("/empty", Route(body=b""))
    server.set(
        "/cp1251",
        Route(
            body="<html><head><meta charset=windows-1251></head><body>"
            "Делегация</body></html>".encode("cp1251")
        ),
    )
    names = ["ok", "flaky", "gone", "slow", "reset", "truncated", "huge", "loop", "empty", "cp1251"]
    sources = "".join(source_block(n, server.url(f"/{n}")) for n in names)
    sources += source_block("private", server.url("/private/page"))
    cfg = write_config(tmp_path, sources, max_bytes=100000, timeout=1)
    settings = load_settings(cfg)
    with Store.open(settings.storage.path) as store:
        summary = run_once(settings, settings.sources, store)
        by_id = {o.source_id: o for o in summary.outcomes}
        assert {k: v.outcome for k, v in by_id.items() if v.outcome != "failed"} == {
            "ok": "new",
            "flaky": "new",
            "cp1251": "new",
        }
        assert {k: v.error_kind for k, v in by_id.items() if v.outcome == "failed"} == {
            "gone": "http_status",
            "slow": "timeout",
            "reset": "connection",
            "truncated": "connection",
            "huge": "too_large",
            "loop": "redirect",
            "empty": "empty",
            "private": "robots",
        }
        assert summary.exit_code == 1
        assert server.hits("/private/page") == 0
        assert rows(store, "SELECT attempts FROM fetch_log WHERE source_id = 'flaky'") == [(2,)]
        assert rows(store, "SELECT COUNT(*) FROM snapshots") == [(3,)]
        assert rows(store, "SELECT COUNT(*) FROM fetch_log") == [(len(names) + 1,)]
        errors = rows(store, "SELECT error FROM fetch_log WHERE outcome = 'failed'")
        assert all("\n" not in str(e) and "Traceback" not in str(e) for (e,) in errors)


def test_second_run_sends_validators_and_records_304_and_changes(
    tmp_path: Path, server: LocalServer
) -> None:
    server.set("/a", Route(body=PAGE.format(n=1), etag='"a1"'))
    server.set("/b", Route(body=PAGE.format(n=1), last_modified="Wed, 01 Oct 2025 10:00:00 GMT"))
    server.set("/c", Route(body=PAGE.format(n=1)))
    cfg = write_config(tmp_path, "".join(source_block(n, server.url(f"/{n}")) for n in "abc"))
    settings = load_settings(cfg)
    with Store.open(settings.storage.path) as store:
        first = run_once(settings, settings.sources, store)
        assert first.ids("new") == ["a", "b", "c"] and first.exit_code == 0
        server.set("/c", Route(body=PAGE.format(n=2)))
        second = run_once(settings, settings.sources, store)
        assert second.ids("not_modified") == ["a", "b"]
        assert second.ids("changed") == ["c"]
        requests = [r for r in server.requests if r.path == "/a"]
        assert requests[-1].headers.get("if-none-match") == '"a1"'
        requests = [r for r in server.requests if r.path == "/b"]
        assert requests[-1].headers.get("if-modified-since") == "Wed, 01 Oct 2025 10:00:00 GMT"
        assert rows(store, "SELECT COUNT(*) FROM snapshots") == [(4,)]
        assert rows(
            store, "SELECT outcome, COUNT(*) FROM fetch_log GROUP BY outcome ORDER BY outcome"
        ) == [("changed", 1), ("new", 3), ("not_modified", 2)]


def test_unchanged_pages_replayed_many_times_add_no_snapshots(
    tmp_path: Path, server: LocalServer
) -> None:
    server.set("/a", Route(body=PAGE.format(n=1)))  # no validators: full body each time
    cfg = write_config(tmp_path, source_block("a", server.url("/a")))
    settings = load_settings(cfg)
    with Store.open(settings.storage.path) as store:
        for _ in range(25):
            run_once(settings, settings.sources, store)
        assert rows(store, "SELECT COUNT(*), MAX(seen_count) FROM snapshots") == [(1, 25)]
        assert rows(
            store, "SELECT outcome, COUNT(*) FROM fetch_log GROUP BY outcome ORDER BY outcome"
        ) == [("new", 1), ("unchanged", 24)]


KG_BLOCK = (
    "<div><p>Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA consists "
    "of {n} deputies.</p><p>Plenipotentiary Representative of the Supreme Council of the "
    "Kyrgyz Republic: {rep}</p></div>"
)
ROSTER = "<ul>{items}</ul>"


def events(store: Store) -> list[tuple[object, ...]]:
    return rows(store, "SELECT kind, delegation, attribute, old, new FROM events ORDER BY id")


def test_changing_a_source_config_is_not_a_change_in_the_world(
    tmp_path: Path, server: LocalServer
) -> None:
    names = ["Nurlan Example", "Aigul Sample", "Bakyt Demo", "Cholpon Placeholder"]
    server.set(
        "/r",
        Route(
            body=ROSTER.format(items="".join(f'<li><span class="n">{n}</span></li>' for n in names))
        ),
    )
    block = source_block("r", server.url("/r"), parser="roster")
    cfg = write_config(tmp_path, block + '[sources.options]\nname = ".n"\nmin_items = 2\n')
    settings = load_settings(cfg)
    with Store.open(settings.storage.path) as store:
        run_once(settings, settings.sources, store)
        assert rows(store, "SELECT COUNT(*) FROM facts WHERE subject = 'roster'") == [(4,)]
        # the same source now says which delegation it lists: facts move, no member events
        cfg = write_config(
            tmp_path, block + 'delegation = "KG"\n[sources.options]\nname = ".n"\nmin_items = 2\n'
        )
        settings = load_settings(cfg)
        run_once(settings, settings.sources, store)
        assert events(store) == []
        assert rows(
            store, "SELECT COUNT(*) FROM members WHERE delegation = 'KG' AND valid_to IS NULL"
        ) == [(4,)]
        # the source now points at another page: a new baseline, no events either
        server.set(
            "/r2",
            Route(
                body=ROSTER.format(
                    items="".join(
                        f'<li><span class="n">{n}</span></li>' for n in [*names[:2], "Other Person"]
                    )
                )
            ),
        )
        cfg = write_config(
            tmp_path,
            source_block("r", server.url("/r2"), parser="roster")
            + 'delegation = "KG"\n[sources.options]\nname = ".n"\n'
            "min_items = 2\n",
        )
        settings = load_settings(cfg)
        run_once(settings, settings.sources, store)
        assert events(store) == []
        current = rows(store, "SELECT name FROM members WHERE valid_to IS NULL ORDER BY name")
        assert current == [("Aigul Sample",), ("Nurlan Example",), ("Other Person",)]


def test_the_delegation_option_is_used_when_the_source_has_none(
    tmp_path: Path, server: LocalServer
) -> None:
    server.set("/r", Route(body='<ul><li class="n">Nurlan Example</li></ul>'))
    cfg = write_config(
        tmp_path,
        source_block("r", server.url("/r"), parser="roster")
        + '[sources.options]\nname = ".n"\ndelegation = "KG"\n',
    )
    settings = load_settings(cfg)
    with Store.open(settings.storage.path) as store:
        run_once(settings, settings.sources, store)
        assert rows(store, "SELECT delegation FROM members") == [("KG",)]


def test_a_database_error_in_one_check_spares_the_others(
    tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.set("/fast", Route(body=KG_BLOCK.format(n=6, rep="Shabdanbek Alishev")))
    server.set("/slow", Route(body=KG_BLOCK.format(n=6, rep="Shabdanbek Alishev"), delay=0.5))
    cfg = write_config(
        tmp_path,
        source_block("fast", server.url("/fast"), parser="delegations")
        + source_block("slow", server.url("/slow"), parser="delegations"),
    )
    settings = load_settings(cfg)
    with Store.open(settings.storage.path) as store:
        real = store._record_one

        def flaky(check: CheckInput, *args: object, **kwargs: object) -> object:
            if check.source_id == "fast":
                raise sqlite3.OperationalError("database or disk is full")
            return real(check, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(store, "_record_one", flaky)
        with pytest.raises(StorageError, match="database or disk is full"):
            run_once(settings, settings.sources, store)
        assert rows(store, "SELECT source_id, outcome FROM fetch_log") == [("slow", "new")]


def test_checks_arriving_together_share_a_transaction_and_a_refused_one_fails_alone(
    tmp_path: Path, server: LocalServer
) -> None:
    import asyncio
    from dataclasses import replace
    from datetime import UTC, datetime

    from pawatch.pipeline import Recorder
    from pawatch.storage.facts import Policy

    names = [f"s{i}" for i in range(6)]
    for name in names:
        server.set(f"/{name}", Route(body=PAGE.format(n=1), etag=f'"{name}"'))
    cfg = write_config(tmp_path, "".join(source_block(n, server.url(f"/{n}")) for n in names))
    settings = load_settings(cfg)
    with Store.open(settings.storage.path) as store:
        run_once(settings, settings.sources, store)
        second = run_once(settings, settings.sources, store)  # six 304s
        assert second.ids("not_modified") == names
        assert rows(store, "SELECT seen_count FROM snapshots") == [(2,)] * 6
        checks = [
            CheckInput(
                source_id=n,
                url=server.url(f"/{n}"),
                started_at=datetime.now(UTC),
                duration=0.01,
                http_status=304,
                not_modified=True,
            )
            for n in names
        ]
        commits: list[int] = []
        real = store.record_checks

        def counted(items: list[object]) -> object:
            commits.append(len(items))
            return real(items)  # type: ignore[arg-type]

        store.record_checks = counted  # type: ignore[method-assign]

        async def record(recorder: Recorder, batch: list[CheckInput]) -> list[object]:
            return await asyncio.gather(
                *(recorder.record(c, None, Policy()) for c in batch), return_exceptions=True
            )

        recorder = Recorder(store, size=4)
        outcomes = asyncio.run(record(recorder, checks))
        # the first is written at once; the five that arrived meanwhile: four, then one
        assert recorder.groups == 3 and commits == [4]
        assert [getattr(o, "outcome", o) for o in outcomes] == ["not_modified"] * 6
        assert rows(store, "SELECT seen_count FROM snapshots") == [(3,)] * 6
        # a check the database refuses (a source it does not know) fails alone
        before = rows(store, "SELECT COUNT(*) FROM fetch_log")[0][0]
        bad = replace(
            checks[3], source_id="nope", not_modified=False, error="x", error_kind="connection"
        )
        outcomes = asyncio.run(record(Recorder(store, size=4), [bad, *checks[:3]]))
        assert isinstance(outcomes[0], Exception)
        assert [getattr(o, "outcome", o) for o in outcomes[1:]] == ["not_modified"] * 3
        assert rows(store, "SELECT COUNT(*) FROM fetch_log")[0][0] == before + 3
        seen = rows(store, "SELECT seen_count FROM snapshots ORDER BY source_id")
        assert seen == [(4,)] * 3 + [(3,)] * 3


def test_checks_are_written_in_the_stores_writer_thread(
    tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the event loop fetches while one writer thread stores: every write of a run happens
    # there (never two threads in one transaction), and closing the store waits for it
    import threading

    names = ["a", "b", "c"]
    for name in names:
        server.set(f"/{name}", Route(body=PAGE.format(n=name), etag=f'"{name}"'))
    cfg = write_config(tmp_path, "".join(source_block(n, server.url(f"/{n}")) for n in names))
    settings = load_settings(cfg)
    threads: list[tuple[str, str]] = []
    with Store.open(settings.storage.path) as store:
        for method in ("record_check", "record_checks", "reconcile", "sync_sources"):
            real = getattr(store, method)

            def spy(*args: object, _real: object = real, _name: str = method) -> object:
                threads.append((_name, threading.current_thread().name))
                return _real(*args)  # type: ignore[operator]

            monkeypatch.setattr(store, method, spy)
        first = run_once(settings, settings.sources, store)
        second = run_once(settings, settings.sources, store)  # three 304s, one batch
    assert first.ids("new") == names and second.ids("not_modified") == names
    called = {name for name, _ in threads}
    assert {"reconcile", "sync_sources"} <= called
    # one by one or grouped (checks arriving while the writer is busy): timing decides
    assert called & {"record_check", "record_checks"}
    assert {thread.split("_")[0] for _, thread in threads} == {"pawatch-writer"}
    assert threading.main_thread().name not in {thread for _, thread in threads}
    with Store.open(settings.storage.path) as store:
        assert store.db.conn.execute("SELECT COUNT(*) FROM fetch_log").fetchone() == (6,)


def test_a_run_summary_formats_without_its_outcomes() -> None:
    """asyncio.run formats its finished main task, result included, when the run ends: a
    summary of a large run must not format every outcome (0.4 s per 1000 sources)."""
    from datetime import UTC, datetime

    from pawatch.pipeline import RunSummary
    from pawatch.storage import CheckOutcome

    summary = RunSummary(started_at=datetime.now(UTC))
    summary.outcomes = [CheckOutcome(f"s{i}", "not_modified", i, i) for i in range(1000)]
    assert len(repr(summary)) < 300
    assert summary.as_json()["counts"]["not_modified"] == 1000


def test_a_run_freezes_the_start_up_objects_for_its_collections_only(
    tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """During a run the objects alive at its start are frozen (the collector skips them);
    after it they are not, so a daemon's later cycles still collect what a cycle left."""
    import gc

    server.set("/a", Route(body=PAGE.format(n="a")))
    settings = load_settings(write_config(tmp_path, source_block("a", server.url("/a"))))
    during: list[int] = []
    with Store.open(settings.storage.path) as store:
        real = store.record_check

        def spy(*args: object) -> object:
            during.append(gc.get_freeze_count())
            return real(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(store, "record_check", spy)
        before = gc.get_freeze_count()
        summary = run_once(settings, settings.sources, store)
        after = gc.get_freeze_count()
    assert summary.ids("new") == ["a"]
    assert during and during[0] > before  # the store, config and modules among them
    assert after == before
