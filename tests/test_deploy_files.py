"""docs/pawatch.service and docs/crontab: they parse, and the commands they run exist."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from pawatch.cli import COMMANDS, cli, load_command

DOCS = Path(__file__).resolve().parents[1] / "docs"
UNIT = DOCS / "pawatch.service"
CRONTAB = DOCS / "crontab"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: {section: {key: [values]}}, continuation lines joined."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert re.fullmatch(r"\[[A-Za-z]+\]", line), f"line {number}: bad section {line!r}"
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"line {number}: a key before any [Section]"
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key.strip()), f"line {number}"
        current.setdefault(key.strip(), []).append(value.strip())
    assert not pending, "the file ends with a continuation backslash"
    return sections


def _pawatch_args(command: str, program: str) -> list[str]:
    words = shlex.split(command.split(">", 1)[0])
    assert Path(words[0]).name == program == "pawatch", command
    return words[1:]


def _check_cli_args(args: list[str]) -> None:
    """The options and command exist: click parses them (nothing runs)."""
    at = next((i for i, a in enumerate(args) if a in COMMANDS), None)
    assert at is not None, f"no pawatch command in {args}"
    ctx = cli.make_context("pawatch", args[: at + 1])  # the group's own options
    load_command(args[at]).make_context(args[at], args[at + 1 :], parent=ctx)


def test_unit_file_sections_and_required_keys() -> None:
    unit = parse_unit(UNIT.read_text(encoding="utf-8"))
    assert set(unit) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    for key in ("ExecStart", "ExecReload", "User", "Restart", "StateDirectory"):
        assert key in service, key
    assert service["User"] == ["pawatch"] and service["Restart"] == ["on-failure"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["NoNewPrivileges"] == ["yes"] and service["ProtectSystem"] == ["strict"]
    assert set(service["RestartPreventExitStatus"][0].split()) == {"2", "3"}
    # the stop timeout leaves room for the default 30 s grace period
    assert int(service["TimeoutStopSec"][0]) > 30
    envs = dict(e.split("=", 1) for e in service["Environment"])
    assert envs["PAWATCH_DB"].startswith("/var/lib/pawatch/")  # inside StateDirectory
    (start,) = service["ExecStart"]
    args = _pawatch_args(start, "pawatch")
    assert args[0] == "daemon"
    _check_cli_args(args)
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # verify wants ExecStart to exist: point it at an executable that does
    text = UNIT.read_text(encoding="utf-8").replace("/opt/pawatch/venv/bin/pawatch", sys.executable)
    unit = tmp_path / "pawatch.service"
    unit.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0 and "Failed to " in proc.stderr and "pawatch" not in proc.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {proc.stderr.strip()[:200]}")
    ours = [line for line in proc.stderr.splitlines() if "pawatch.service" in line]
    assert proc.returncode == 0 and not ours, proc.stderr


_CRON_FIELD = re.compile(
    r"^(\*|[0-9a-z]+(-[0-9a-z]+)?)(/[0-9]+)?(,(\*|[0-9a-z]+(-[0-9a-z]+)?)(/[0-9]+)?)*$"
)
_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_NAMES = [
    set(),
    set(),
    set(),
    {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"},
    {"mon", "tue", "wed", "thu", "fri", "sat", "sun"},
]


def parse_crontab(text: str) -> tuple[dict[str, str], list[tuple[list[str], str]]]:
    """A user crontab: (environment assignments, [(five fields, command)])."""
    env: dict[str, str] = {}
    jobs: list[tuple[list[str], str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assignment = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)", line)
        if assignment:
            env[assignment.group(1)] = assignment.group(2)
            continue
        parts = line.split(None, 5)
        assert len(parts) == 6, f"line {number}: expected five fields and a command: {line!r}"
        fields, command = parts[:5], parts[5]
        for i, field in enumerate(fields):
            assert _CRON_FIELD.match(field), f"line {number}: bad field {field!r}"
            for token in re.findall(r"[0-9a-z]+", field.split("/")[0]):
                if token.isdigit():
                    low, high = _RANGES[i]
                    assert low <= int(token) <= high, f"line {number}: {field!r} out of range"
                else:
                    assert token in _NAMES[i], f"line {number}: unknown name {token!r}"
        jobs.append((fields, command))
    return env, jobs


def test_crontab_lines_are_five_fields_and_a_real_pawatch_command() -> None:
    from apscheduler.triggers.cron import CronTrigger

    env, jobs = parse_crontab(CRONTAB.read_text(encoding="utf-8"))
    assert {"PAWATCH_CONFIG", "PAWATCH_DB", "PATH"} <= set(env)
    assert env["PAWATCH_DB"] == "/var/lib/pawatch/pawatch.db"
    assert jobs
    for fields, command in jobs:
        CronTrigger.from_crontab(" ".join(fields), timezone="UTC")  # also valid for APScheduler
        # weekdays by name: cron counts Sunday as 0, APScheduler 3.x counts Monday as 0
        assert not re.search(r"\d", fields[4]), f"write weekday names, not {fields[4]!r}"
        _check_cli_args(_pawatch_args(command, "pawatch"))
    commands = [c for _, c in jobs]
    assert any(" run --due " in c and "--wait" in c for c in commands)


def test_the_parsers_catch_mistakes() -> None:
    with pytest.raises(AssertionError):
        parse_crontab("*/5 * * * pawatch run --due\n")  # four fields
    with pytest.raises(AssertionError):
        parse_crontab("61 * * * * pawatch run\n")
    with pytest.raises(AssertionError):
        parse_unit("ExecStart=/bin/true\n")  # no section
    with pytest.raises(click.UsageError):
        _check_cli_args(["run", "--no-such-option"])


DEPLOY = DOCS / "deploy.md"
VENV_PAWATCH = "/opt/pawatch/venv/bin/pawatch"


def _shell_lines(markdown: str) -> list[str]:
    """The lines of the ```sh blocks of a markdown file."""
    return [
        line.strip()
        for block in re.findall(r"```sh\n(.*?)```", markdown, re.S)
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_deploy_doc_commands_run_as_written() -> None:
    text = DEPLOY.read_text(encoding="utf-8")
    lines = _shell_lines(text)
    assert not [line for line in lines if "$(cat" in line]  # would run as the admin
    assert "python3-venv" in text and "python3 -m venv /opt/pawatch/venv" in text
    install = [line for line in lines if "pip install" in line and "requirements.lock" in line]
    assert install and "--require-hashes -r requirements.lock" in install[0]
    as_pawatch = [line for line in lines if line.startswith("sudo -u pawatch")]
    assert len(as_pawatch) >= 3
    for line in as_pawatch:
        assert VENV_PAWATCH in line, f"give the venv's full path: {line}"
        assert "PAWATCH_CONFIG=/etc/pawatch/pawatch.toml" in line, line
        words = shlex.split(line)
        if "-c" in words:  # sudo -u pawatch sh -c '...': the script's last command
            words = shlex.split(words[words.index("-c") + 1].rsplit(";", 1)[1])
        args = words[words.index(VENV_PAWATCH) + 1 :]
        _check_cli_args(args)
    assert re.search(r"ProtectProc=.*systemd 247", text, re.S)
    assert re.search(r"MAILTO.*mail transfer agent", text, re.S)


def test_unit_and_crontab_use_the_documented_venv() -> None:
    unit = parse_unit(UNIT.read_text(encoding="utf-8"))
    assert unit["Service"]["ExecStart"][0].split()[0] == VENV_PAWATCH
    env, jobs = parse_crontab(CRONTAB.read_text(encoding="utf-8"))
    assert env["PATH"].split(":")[0] == str(Path(VENV_PAWATCH).parent)
    assert all(command.split()[0] == VENV_PAWATCH for _, command in jobs)


def test_rendered_crontab_lines_run(tmp_path: Path) -> None:
    """The crontab with the venv, config and database moved to this test's: every job line
    runs in a POSIX shell with the crontab's environment and exits 0."""
    from pawatch.demo.localserver import LocalServer, Route
    from tests.conftest import source_block, write_config

    venv_bin = Path(sys.executable).parent
    pawatch_script = venv_bin / "pawatch"
    if not pawatch_script.exists():
        pytest.skip("no pawatch script beside this Python")
    env, jobs = parse_crontab(CRONTAB.read_text(encoding="utf-8"))
    with LocalServer("127.0.0.1") as server:
        server.set("/page", Route(body="<p>the delegation</p>"))
        cfg = write_config(tmp_path, source_block("page", server.url("/page"), schedule="1h"))
        rendered = {
            **env,
            "PATH": env["PATH"].replace("/opt/pawatch/venv/bin", str(venv_bin)),
            "PAWATCH_CONFIG": str(cfg),
            "PAWATCH_DB": str(tmp_path / "cron.db"),
            "HOME": str(tmp_path),
        }
        rendered.pop("MAILTO")
        for _, command in jobs:
            line = command.replace(VENV_PAWATCH, str(pawatch_script))
            proc = subprocess.run(
                [env.get("SHELL", "/bin/sh"), "-c", line],
                env=rendered,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert proc.returncode == 0, (line, proc.stdout, proc.stderr)
    assert (tmp_path / "cron.db").exists()  # PAWATCH_DB was used
    assert server.hits("/page") == 1
