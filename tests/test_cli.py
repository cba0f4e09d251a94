"""The CLI as a user runs it: subprocesses against a local server, exit codes, the database."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import click

from pawatch.cli import all_commands, cli
from pawatch.demo.localserver import LocalServer, Route
from tests.conftest import source_block, write_config

ROOT = Path(__file__).resolve().parents[1]


def pawatch(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PAWATCH_")}
    full_env.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "pawatch.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=ROOT,
    )


def test_run_exit_codes_json_summary_and_database(tmp_path: Path, server: LocalServer) -> None:
    server.set("/good", Route(body="<p>fine</p>"))
    server.set("/bad", Route(status=503))
    cfg = write_config(
        tmp_path,
        source_block("good", server.url("/good")) + source_block("bad", server.url("/bad")),
    )
    proc = pawatch("--config", str(cfg), "run", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["counts"]["new"] == 1 and summary["counts"]["failed"] == 1
    assert summary["sources"]["failed"] == ["bad"]
    assert "503" in summary["errors"]["bad"]
    assert "Traceback" not in proc.stderr
    # one log line per check when stderr is not a terminal
    assert re.search(r"good: new \(snapshot 1", proc.stderr)
    assert re.search(r"bad: FAILED \(http_status\)", proc.stderr)
    with sqlite3.connect(tmp_path / "pawatch.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM fetch_log").fetchone()[0] == 2

    only_good = pawatch("--config", str(cfg), "run", "--source", "good")
    assert only_good.returncode == 0, only_good.stderr
    assert "Checked 1 source(s): 0 new, 0 changed, 1 unchanged, 0 failed" in only_good.stdout


def test_status_and_sources_commands(tmp_path: Path, server: LocalServer) -> None:
    server.set("/a", Route(body="<p>a</p>"))
    cfg = write_config(tmp_path, source_block("alpha", server.url("/a"), schedule="30m"))
    assert pawatch("--config", str(cfg), "run").returncode == 0
    status = pawatch("--config", str(cfg), "status", "--format", "json")
    assert status.returncode == 0
    data = json.loads(status.stdout)
    assert data["ok"] is True and data["daemon"] == {"alive": False, "state": "never"}
    (row,) = data["sources"]
    assert row["id"] == "alpha" and row["snapshots"] == 1 and row["consecutive_failures"] == 0
    text = pawatch("--config", str(cfg), "status").stdout
    assert "alpha" in text and "new" in text
    listing = pawatch("--config", str(cfg), "sources")
    assert listing.returncode == 0 and "alpha" in listing.stdout and "30m" in listing.stdout


def test_db_option_and_env_override_the_storage_path(tmp_path: Path, server: LocalServer) -> None:
    server.set("/a", Route(body="<p>a</p>"))
    cfg = write_config(tmp_path, source_block("alpha", server.url("/a")))
    other = tmp_path / "other.db"
    assert pawatch("--config", str(cfg), "--db", str(other), "run").returncode == 0
    assert other.exists()
    env_db = tmp_path / "env.db"
    assert (
        pawatch("run", env={"PAWATCH_CONFIG": str(cfg), "PAWATCH_DB": str(env_db)}).returncode == 0
    )
    assert env_db.exists()


def test_config_and_usage_errors_exit_2_with_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[sources]]\nid = "x"\nurl = "gopher://old.example/"\nparser = "page"\n')
    proc = pawatch("--config", str(bad), "run")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"pawatch: config error: {bad}: sources[0] (x).url: expected an http:// or https:// "
        "URL with a host, got 'gopher://old.example/'"
    ]
    good = write_config(tmp_path, source_block("a", "http://127.0.0.1:9/"))
    unknown = pawatch("--config", str(good), "run", "--source", "nope")
    assert unknown.returncode == 2 and "unknown source id(s): nope" in unknown.stderr
    assert pawatch("--config", str(good), "run", "--bogus").returncode == 2
    missing_dir = pawatch("--config", str(good), "--db", str(tmp_path / "no" / "x.db"), "run")
    assert missing_dir.returncode == 2 and "does not exist" in missing_dir.stderr


def test_refused_connection_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, source_block("down", "http://127.0.0.1:9/"))
    proc = pawatch("--config", str(cfg), "run")
    assert proc.returncode == 1
    assert "failed: down:" in proc.stdout and "Traceback" not in proc.stderr


def test_every_cli_command_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert isinstance(cli, click.Group)
    for name, command in all_commands().items():
        assert f"`pawatch {name}" in readme, f"README does not document `pawatch {name}`"
        assert command.help, f"`pawatch {name}` has no help text"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"`pawatch {name} {param.opts[0]}` has no help"


def test_readme_quick_start_commands_exist_in_the_makefile() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for target in ("demo", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.M)
    assert "make test" in ci


def test_run_prints_the_pending_report_once_unless_no_deliver(
    tmp_path: Path, server: LocalServer
) -> None:
    sentence = (
        "<p>Delegation of the Supreme Council of the Kyrgyz Republic to the CSTO PA consists "
        "of {n} deputies.</p>"
    )
    server.set("/p", Route(body=sentence.format(n=6)))
    cfg = write_config(tmp_path, source_block("kg", server.url("/p"), parser="delegations"))
    assert pawatch("--config", str(cfg), "run").returncode == 0
    server.set("/p", Route(body=sentence.format(n=7)))
    held = pawatch("--config", str(cfg), "run", "--no-deliver")
    assert held.returncode == 0 and "6 -> 7" not in held.stdout
    first = pawatch("--config", str(cfg), "run")
    assert first.returncode == 0
    assert "Supreme Council: 6 -> 7 seats" in first.stdout
    assert first.stdout.index("Checked 1 source(s)") < first.stdout.index("6 -> 7")
    again = pawatch("--config", str(cfg), "run", "--format", "json")
    assert again.returncode == 0 and "6 -> 7" not in again.stdout + again.stderr
    json.loads(again.stdout)


def test_a_page_that_cannot_be_read_is_reported_and_exits_1(
    tmp_path: Path, server: LocalServer
) -> None:
    server.set("/r", Route(body='<ul><li class="n">Nurlan Example</li></ul>'))
    block = source_block("r", server.url("/r"), parser="roster")
    cfg = write_config(tmp_path, block + '[sources.options]\nname = ".n"\n')
    assert pawatch("--config", str(cfg), "run").returncode == 0
    server.set("/r", Route(body='<ul><li class="person">Nurlan Example</li></ul>'))
    broken = pawatch("--config", str(cfg), "run")
    assert broken.returncode == 1
    assert "broken: r:" in broken.stdout and "'.n'" in broken.stdout
    assert "BROKEN" in broken.stderr
    status = pawatch("--config", str(cfg), "status")
    assert "broken" in status.stdout and "! r: cannot read the page" in status.stdout
    assert status.returncode == 1  # a health check: a broken source is not healthy
    as_json = pawatch("--config", str(cfg), "status", "--format", "json")
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert data["sources"][0]["parse_status"] == "broken" and data["unhealthy"] == ["r"]


def test_questions_never_create_a_database(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, source_block("a", "http://127.0.0.1:9/"))
    status = pawatch("--config", str(cfg), "status")
    assert status.returncode == 0 and "No checks recorded yet" in status.stdout
    for args in (["changes"], ["history", "KG"], ["show", "1"], ["export"], ["report"]):
        proc = pawatch("--config", str(cfg), *args)
        assert proc.returncode == 2, args
        assert "no database at" in proc.stderr and "pawatch run" in proc.stderr
    assert not (tmp_path / "pawatch.db").exists()


def test_deliver_dry_run_with_nothing_pending_says_so(tmp_path: Path, server: LocalServer) -> None:
    server.set("/a", Route(body="<p>a</p>"))
    cfg = write_config(tmp_path, source_block("a", server.url("/a")))
    assert pawatch("--config", str(cfg), "run").returncode == 0
    dry = pawatch("--config", str(cfg), "deliver", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == "nothing pending"


def test_status_is_a_health_check(tmp_path: Path, server: LocalServer) -> None:
    server.set("/a", Route(body="<p>a</p>"))
    server.set("/b", Route(body="<p>b</p>"))
    cfg = write_config(
        tmp_path, source_block("a", server.url("/a")) + source_block("b", server.url("/b"))
    )
    assert pawatch("--config", str(cfg), "run").returncode == 0
    assert pawatch("--config", str(cfg), "status").returncode == 0
    server.set("/b", Route(status=500))
    assert pawatch("--config", str(cfg), "run").returncode == 1
    failing = pawatch("--config", str(cfg), "status", "--format", "json")
    assert failing.returncode == 1
    data = json.loads(failing.stdout)
    assert data["ok"] is False and data["unhealthy"] == ["b"]
    assert data["daemon"]["alive"] is False
    assert pawatch("--config", str(cfg), "status").returncode == 1


def test_a_global_option_after_the_command_gets_a_hint(tmp_path: Path) -> None:
    proc = pawatch("changes", "--db", str(tmp_path / "x.db"))
    assert proc.returncode == 2
    assert "--db is a global option: give it before the command" in proc.stderr
    assert "pawatch --db ... changes" in proc.stderr
    other = pawatch("changes", "--colour")
    assert other.returncode == 2 and "--colour" in other.stderr and "global" not in other.stderr
