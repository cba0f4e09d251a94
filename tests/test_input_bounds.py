"""Bad config and command-line input: one clear line naming the key, exit 2, never a traceback
or a hang. Each case found accepted or crashing in issue 9 is a row here (config through
``load_settings`` and, for a few, through the real CLI in a subprocess with a timeout)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pawatch import times
from pawatch.config import ConfigError, Schedule
from pawatch.reports import parse_since
from pawatch.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SRC = '[[sources]]\nid = "a"\nurl = "https://x.org/"\nparser = "page"\n'
EMAIL = '[email]\nsmtp_host = "localhost"\nsender = "p@example.org"\nrecipients = ["d@x.org"]\n'
A = "sources[0] (a)"


def source(**keys: str) -> str:
    """SRC with keys replaced or added (values are TOML)."""
    lines = {"id": '"a"', "url": '"https://x.org/"', "parser": '"page"'} | keys
    options = lines.pop("options", None)
    text = "[[sources]]\n" + "".join(f"{k} = {v}\n" for k, v in lines.items())
    return text + (f"[sources.options]\n{options}\n" if options else "")


# (case, config text, the key the one-line message names, what it says)
BAD = [
    # periods and schedules
    ("schedule overflow", source(schedule='"99999999999d"'), f"{A}.schedule", "at most 366d"),
    ("schedule too small", source(schedule='"0.0001s"'), f"{A}.schedule", "at least 1s"),
    ("schedule zero", source(schedule='"0s"'), f"{A}.schedule", "more than 0"),
    ("schedule 1000 digits", source(schedule=f'"{"9" * 1000}d"'), f"{A}.schedule", "at most"),
    ("cron never fires", source(schedule='"0 0 31 2 *"'), f"{A}.schedule", "once a year"),
    ("cron 29 February", source(schedule='"0 0 29 2 *"'), f"{A}.schedule", "once a year"),
    ("cron Friday 13th", source(schedule='"0 0 13 * fri"'), f"{A}.schedule", "once a year"),
    ("digest overflow", EMAIL + 'digest = "99999999999d"\n' + SRC, "email.digest", "at most"),
    ("deliver never", '[daemon]\ndeliver = "0 0 31 2 *"\n' + SRC, "daemon.deliver", "expected"),
    # URLs
    ("url with space", source(url='"https://x.org/a b"'), f"{A}.url", "without spaces"),
    ("url newline", source(url='"https://x.org/\\nHost: evil"'), f"{A}.url", "control"),
    ("url tab", source(url='"https://x.org/\\t"'), f"{A}.url", "control"),
    ("url port 99999", source(url='"http://x.org:99999/"'), f"{A}.url", "1 to 65535"),
    ("url port 0", source(url='"http://x.org:0/"'), f"{A}.url", "1 to 65535"),
    ("url port text", source(url='"http://x.org:http/"'), f"{A}.url", "1 to 65535"),
    ("proxy port", '[http]\nproxy = "http://p.org:70000"\n' + SRC, "http.proxy", "65535"),
    # numbers: nan, inf, huge
    ("timeout nan", "[http]\ntimeout = nan\n" + SRC, "http.timeout", "> 0 and <= 3600"),
    ("timeout inf", "[http]\ntimeout = inf\n" + SRC, "http.timeout", "> 0 and <= 3600"),
    ("timeout huge", "[http]\ntimeout = 1e300\n" + SRC, "http.timeout", "<= 3600"),
    ("read timeout -inf", "[http]\nread_timeout = -inf\n" + SRC, "http.read_timeout", "> 0"),
    ("delay inf", "[http]\nper_host_delay = inf\n" + SRC, "http.per_host_delay", ">= 0"),
    ("backoff nan", "[http]\nbackoff_max = nan\n" + SRC, "http.backoff_max", "<= 3600"),
    ("retries int64", "[http]\nretries = 9223372036854775807\n" + SRC, "http.retries", "0 to 20"),
    ("max_bytes 1e12", "[http]\nmax_bytes = 1000000000000\n" + SRC, "http.max_bytes", "to 1_0"),
    ("concurrency 0", "[http]\nper_host_concurrency = 0\n" + SRC, "http.per_host_concurrency", ""),
    ("fetch processes -1", "[http]\nfetch_processes = -1\n" + SRC, "http.fetch_processes", ""),
    ("fetch processes 65", "[http]\nfetch_processes = 65\n" + SRC, "http.fetch_processes", ""),
    ("redirects 1e6", "[http]\nmax_redirects = 1000000\n" + SRC, "http.max_redirects", "0 to 50"),
    ("source timeout nan", source(timeout="nan"), f"{A}.timeout", "> 0"),
    ("collapse nan", source(collapse_ratio="nan"), f"{A}.collapse_ratio", ">= 0 and <= 1"),
    ("confirm huge", source(confirm="1000000"), f"{A}.confirm", "1 to 100"),
    ("email timeout nan", EMAIL + "timeout = nan\n" + SRC, "email.timeout", "> 0"),
    ("email timeout inf", EMAIL + "timeout = inf\n" + SRC, "email.timeout", "> 0"),
    ("jitter nan", "[daemon]\njitter = nan\n" + SRC, "daemon.jitter", "seconds"),
    ("lock timeout inf", "[daemon]\nlock_timeout = inf\n" + SRC, "daemon.lock_timeout", "<="),
    (
        "user agent newline",
        '[http]\nuser_agent = "a\\nX-Evil: 1"\n' + SRC,
        "http.user_agent",
        "one-line",
    ),
    ("source agent NUL", source(user_agent='"a\\u0000b"'), f"{A}.user_agent", "control"),
    # encodings and regexes
    ("encoding base64", source(encoding='"base64"'), f"{A}.encoding", "text encoding"),
    ("encoding hex", source(encoding='"hex"'), f"{A}.encoding", "text encoding"),
    ("encoding rot13", source(encoding='"rot13"'), f"{A}.encoding", "text encoding"),
    ("encoding zlib", source(encoding='"zlib"'), f"{A}.encoding", "text encoding"),
    ("ignore regex", source(options='ignore = "(unclosed"'), f"{A}.options.ignore", "compile"),
    (
        "ignore list",
        source(options='ignore = ["fine", "[a-"]'),
        f"{A}.options.ignore",
        "'[a-'",
    ),
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pawatch.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("case", "text", "key", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_one_line_naming_file_and_key(
    tmp_path: Path, case: str, text: str, key: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert info.value.key == key
    assert expected in message, message
    assert "\n" not in message and len(message) < 600, message


def test_the_good_neighbours_of_the_bad_cases_load(tmp_path: Path) -> None:
    """The bounds are not too tight: the edges and the usual values pass."""
    text = (
        "[http]\ntimeout = 3600\nper_host_delay = 0\nretries = 20\nmax_bytes = 1_000_000_000\n"
        + EMAIL
        + 'timeout = 0.5\ndigest = "366d"\n'
        + source(
            schedule='"1s"',
            url='"http://user:pw@x.org:65535/a%20b?q=1"',
            encoding='"windows-1251"',
            options='ignore = ["\\\\d+ views", "(?i)updated .*"]',
        )
        + source(id='"b"', schedule='"0 0 29 2,3 *"')
        + source(id='"c"', schedule='"45s"', encoding='"koi8-r"')
    )
    settings = load_settings(write(tmp_path, text))
    a, b, c = settings.sources
    assert a.schedule.interval == timedelta(seconds=1) and a.encoding == "cp1251"
    assert b.schedule.cron == "0 0 29 2,3 *" and c.schedule.interval == timedelta(seconds=45)
    assert settings.email is not None and settings.email.digest == timedelta(days=366)


def test_a_url_password_never_shows_in_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, source(url='"https://user:secret@x.org/a b"'))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "secret" not in str(info.value) and "user:***@x.org" in str(info.value)


# ------------------------------------------------------------------ one grammar for periods


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45s", 45), ("30m", 1800), ("1.5h", 5400), ("6h", 21600), ("1d", 86400), ("2w", 1209600)],
)
def test_schedules_and_since_read_the_same_periods(text: str, seconds: int) -> None:
    assert Schedule.parse(text).interval == timedelta(seconds=seconds)
    assert parse_since(text, NOW) == NOW - timedelta(seconds=seconds)
    assert times.parse_period(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("99999999999d", "at most"),
        ("9" * 5000 + "w", "at most"),
        ("0m", "more than 0"),
        ("7 days", "expected a period like"),
        ("-1d", "expected a period like"),
        ("2026-13-01", "expected a period like '7d'"),
        ("0001-01-01T00:00+01:00", "ISO 8601"),  # before year 1 in UTC: no OverflowError
    ],
)
def test_bad_moments_are_value_errors_with_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_since(text, NOW)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_moments_dates_and_stored_times() -> None:
    assert times.parse_moment("2026-11-01", NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    end = times.parse_moment("2026-11-01", NOW, end_of_day=True)
    assert end == datetime(2026, 11, 1, 23, 59, 59, tzinfo=UTC)
    assert times.parse_moment("9999-12-31", NOW, end_of_day=True).year == 9999
    local = times.parse_moment("2026-11-01T12:00+03:00", NOW)
    assert times.format_time(local) == "2026-11-01T09:00:00Z"
    assert times.parse_time(times.format_time(NOW)) == NOW
    # the stored form sorts as text even for early years (zero-padded)
    assert times.format_time(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00Z"
    from pawatch.storage import format_time, parse_time

    assert format_time is times.format_time and parse_time is times.parse_time


# ------------------------------------------------------------------ through the real CLI


def pawatch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAWATCH_")}
    env.update({"PYTHONPATH": str(ROOT), "PAWATCH_DB": str(tmp_path / "pawatch.db")})
    return subprocess.run(
        [sys.executable, "-m", "pawatch.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,  # a hang (waiting forever, retrying forever) fails here
        env=env,
        cwd=tmp_path,
    )


CLI_CONFIG = [
    ("sources", source(schedule='"99999999999d"'), f"{A}.schedule"),
    ("sources", "[http]\ntimeout = nan\n" + SRC, "http.timeout"),
    (
        "run",
        "[http]\nretries = 9223372036854775807\n" + source(url='"http://127.0.0.1:9/"'),
        "http.retries",
    ),
    (
        "run",
        "[http]\nper_host_delay = inf\n" + source(url='"http://127.0.0.1:9/"'),
        "http.per_host_delay",
    ),
    ("run", source(url='"http://127.0.0.1:99999/"'), f"{A}.url"),
    ("deliver", EMAIL + "timeout = nan\n" + SRC, "email.timeout"),
    ("sources", source(encoding='"base64"'), f"{A}.encoding"),
    ("sources", source(options='ignore = "("'), f"{A}.options.ignore"),
]


@pytest.mark.parametrize(("command", "text", "key"), CLI_CONFIG, ids=[c[2] for c in CLI_CONFIG])
def test_cli_bad_config_exits_2_with_one_line(
    tmp_path: Path, command: str, text: str, key: str
) -> None:
    path = write(tmp_path, text)
    proc = pawatch(tmp_path, "--config", str(path), command)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"pawatch: config error: {path}: {key}: "), proc.stderr
    assert not (tmp_path / "pawatch.db").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (bytes(range(256)) * 8, "not UTF-8 text"),
        ("x = 'é'\n".encode("latin-1"), "not UTF-8 text"),
        (b"\x00\x01\x02 binary", "not valid TOML"),
    ],
    ids=["binary", "latin-1", "nul bytes"],
)
def test_cli_config_that_is_not_text_exits_2_with_one_line(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "blob.toml"
    path.write_bytes(content)
    proc = pawatch(tmp_path, "--config", str(path), "sources")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr


def _usage_error(proc: subprocess.CompletedProcess[str], option: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and option in errors[0], proc.stderr
    return errors[0]


@pytest.mark.parametrize(
    ("args", "option", "expected"),
    [
        (("run", "--wait", "nan"), "--wait", "nan"),
        (("run", "--wait", "inf"), "--wait", "86400"),
        (("run", "--wait", "1e300"), "--wait", "86400"),
        (("changes", "--since", "99999999999d"), "--since", "at most"),
        (("changes", "--since", "yesterday"), "--since", "expected a period"),
        (("report", "--since", "99999999999d"), "--since", "at most"),
        (("history", "KG", "--as-of", "99999999999d"), "--as-of", "at most"),
        (("history", "KG", "--as-of", "2026-02-30"), "--as-of", "ISO 8601"),
    ],
)
def test_cli_numbers_and_times_exit_2_with_one_error_line(
    tmp_path: Path, args: tuple[str, ...], option: str, expected: str
) -> None:
    path = write(tmp_path, source(url='"http://127.0.0.1:9/"'))
    line = _usage_error(pawatch(tmp_path, "--config", str(path), *args), option)
    assert expected in line, line


def test_cli_since_45s_is_a_period_like_a_schedule(tmp_path: Path) -> None:
    """`--since 45s` passes the option check (and stops only at the missing database)."""
    path = write(tmp_path, source(url='"http://127.0.0.1:9/"', schedule='"45s"'))
    proc = pawatch(tmp_path, "--config", str(path), "changes", "--since", "45s")
    assert proc.returncode == 2 and "no database at" in proc.stderr, proc.stderr
