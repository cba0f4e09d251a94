"""The README is the project's front door: what it says about the commands, the config keys and
their defaults, the bundled sources, its links and its example queries must be true."""

from __future__ import annotations

import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import click
import pytest

from pawatch.cli import all_commands, cli
from pawatch.config import model
from pawatch.settings import load_settings, settings_from_text

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str, text: str = README) -> str:
    """The text of the section headed ``title`` (any level), up to the next heading of the same
    or a higher level."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    level = 0
    fenced = False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.match(r"(#+) (.*)\n?$", line)
        if level and heading and len(heading.group(1)) <= level:
            break
        if level:
            out.append(line)
        elif heading and heading.group(2) == title:
            level = len(heading.group(1))
    assert level, f"README has no section {title!r}"
    return "".join(out)


def test_section_finds_only_its_own_text() -> None:
    text = "# A\n## B\nb text\n```sh\n# a comment\n```\n### C\nc text\n## D\nd text\n"
    assert section("B", text) == "b text\n```sh\n# a comment\n```\n### C\nc text\n"
    assert section("C", text) == "c text\n"
    with pytest.raises(AssertionError):
        section("E", text)


# ---------------------------------------------------------------- example queries


def _example_commands() -> list[tuple[str, str]]:
    """(comment above it, command) for every command line of the example queries."""
    text = section("Example queries")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert blocks, "no sh block in 'Example queries'"
    out: list[tuple[str, str]] = []
    comment = ""
    for line in "\n".join(blocks).splitlines():
        line = line.strip()
        if line.startswith("#"):
            comment = line
        elif line:
            out.append((comment, line))
    return out


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder `pawatch demo` leaves, as the README's quick start makes it."""
    out = tmp_path_factory.mktemp("readme-demo")
    proc = subprocess.run(
        [sys.executable, "-m", "pawatch.cli", "demo", "--dir", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "pawatch.db").is_file()
    return out


def test_every_example_query_runs_against_the_demo_database(demo_dir: Path) -> None:
    commands = _example_commands()
    assert len(commands) >= 10
    venv_bin = Path(sys.executable).parent
    db = demo_dir / "pawatch.db"
    for comment, line in commands:
        words = shlex.split(line)
        tool = words[0]
        assert tool in ("sqlite-utils", "sqlite3"), line
        assert "pawatch.db" in words, f"an example names the demo's file: {line}"
        if tool == "sqlite-utils" and words[1] == "search":
            # sqlite-utils search pawatch.db TABLE QUERY [...]: prints a JSON list of rows
            proc = subprocess.run(
                [str(venv_bin / "sqlite-utils"), *words[1:]],
                cwd=demo_dir,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert proc.returncode == 0, f"{line}: {proc.stderr}"
            found = proc.stdout.strip() not in ("", "[]")
        else:
            sql = next(w for w in words if w.lstrip().upper().startswith("SELECT"))
            if tool == "sqlite-utils":
                proc = subprocess.run(
                    [str(venv_bin / "sqlite-utils"), *words[1:]],
                    cwd=demo_dir,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert proc.returncode == 0, f"{line}: {proc.stderr}"
            elif shutil.which("sqlite3"):
                proc = subprocess.run(
                    words, cwd=demo_dir, capture_output=True, text=True, timeout=60
                )
                assert proc.returncode == 0 and not proc.stderr, f"{line}: {proc.stderr}"
            with sqlite3.connect(db) as conn:
                found = bool(conn.execute(sql).fetchall())
        if "none in the demo" in comment:
            assert not found, f"the README says this finds nothing in the demo: {line}"
        else:
            assert found, f"finds nothing in the demo's database: {line}"


def test_a_broken_example_query_would_fail(demo_dir: Path) -> None:
    with sqlite3.connect(demo_dir / "pawatch.db") as conn, pytest.raises(sqlite3.Error):
        conn.execute("SELECT no_such_column FROM current_composition").fetchall()


# ---------------------------------------------------------------- configuration

SETTINGS_TABLES = {
    "[storage]": model.StorageSettings,
    "[http]": model.HttpSettings,
    "[[sources]]": model.Source,
    "[email]": model.EmailSettings,
    "[report]": model.ReportSettings,
    "[feed]": model.FeedSettings,
    "[[channels]]": model.ChannelSettings,
    "[daemon]": model.DaemonSettings,
}


def test_every_config_key_is_documented_in_the_configuration_section() -> None:
    text = section("Configuration")
    for table, settings_class in SETTINGS_TABLES.items():
        assert f"`{table}" in text, f"README's Configuration does not name {table}"
        for f in fields(settings_class):
            assert re.search(rf"\b{f.name}\b", text), f"README does not document {table} {f.name}"
    top = (
        {f.name for f in fields(model.Settings)}
        - {"config_files"}
        - {t.strip("[]") for t in SETTINGS_TABLES}
    )
    for key in (*top, "include_default_sources"):
        assert f"`{key}`" in text, f"README does not document the top-level key {key}"


def _table_defaults(title: str) -> dict[str, str]:
    """key -> default column of the key table under the heading ``title``."""
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", section(title), re.M)
    assert rows, f"no key table under {title!r}"
    return {key: default.strip().strip("`") for key, default in rows}


@pytest.mark.parametrize(("title", "attr"), [("`[http]`", "http"), ("`[daemon]`", "daemon")])
def test_documented_defaults_are_the_bundled_defaults(
    title: str, attr: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAWATCH_CONFIG", raising=False)
    monkeypatch.delenv("PAWATCH_DB", raising=False)
    effective = getattr(load_settings(None), attr)  # model defaults + config/default.toml
    documented = _table_defaults(title)
    assert set(documented) == {f.name for f in fields(effective)}
    for key, default in documented.items():
        value = getattr(effective, key)
        if isinstance(value, bool):
            assert default == str(value).lower(), key
        elif isinstance(value, int | float):
            assert float(default) == value, f"{title} {key}: README {default}, code {value}"
        elif isinstance(value, str):
            assert default.strip('"') == value, f"{title} {key}: README {default}, code {value}"


def test_every_bundled_source_is_in_the_bundled_sources_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PAWATCH_CONFIG", raising=False)
    table = section("Bundled sources")
    patterns = re.findall(r"`([a-z0-9*.-]+)`", table)
    for source in load_settings(None).sources:
        assert any(re.fullmatch(p.replace("*", "[a-z]+"), source.id) for p in patterns), (
            f"bundled source {source.id} is not in README's Bundled sources"
        )
        disabled = f"`{source.id}` (disabled)" in table
        assert disabled == (not source.enabled), f"{source.id}: README's (disabled) is wrong"


# ---------------------------------------------------------------- commands, links


def test_every_command_option_is_in_its_row_of_the_commands_table() -> None:
    rows = [line for line in section("Commands").splitlines() if line.startswith("| `pawatch ")]
    assert isinstance(cli, click.Group)
    for name, command in all_commands().items():
        row = " ".join(
            r
            for r in rows
            if r.startswith(f"| `pawatch {name} ") or r.startswith(f"| `pawatch {name}`")
        )
        assert row, f"no row for `pawatch {name}` in README's Commands table"
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                assert any(opt in row for opt in param.opts), (
                    f"`pawatch {name}`: {param.opts[0]} is not in its README row"
                )


def test_local_links_point_at_files() -> None:
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README)
    assert "bench/README.md" in links and "docs/deploy.md" in links
    for link in links:
        assert (ROOT / link).exists(), f"README links to a missing file: {link}"


def test_anchor_links_point_at_headings() -> None:
    prose = re.sub(r"```.*?```", "", README, flags=re.S)  # a comment in a block is no heading
    headings = {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", prose, re.M)
    }
    for anchor in re.findall(r"\]\(#([^)]+)\)", README):
        assert anchor in headings, f"README links to a missing heading: #{anchor}"


def test_the_configuration_examples_load() -> None:
    """Every TOML example of the Configuration section is a valid config as written (the
    `[sources.options]` fragment of the Parsers section is not a whole config)."""

    blocks = re.findall(r"```toml\n(.*?)```", section("Configuration"), re.S)
    assert len(blocks) >= 3
    loaded = [settings_from_text(block, "README") for block in blocks]
    assert any(s.email is not None for s in loaded)
    assert any(s.channels for s in loaded)
    assert any(s.feed.path for s in loaded)
    assert any(len(s.sources) == 1 for s in loaded)
