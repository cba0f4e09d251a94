"""Config loading: defaults, user files over them, and errors that name file, key, expectation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pawatch.config import ConfigError, Schedule
from pawatch.settings import default_settings, load_settings, settings_from_text

MINIMAL = """
[[sources]]
id = "one"
url = "https://example.org/"
parser = "page"
"""


def write(tmp_path: Path, text: str, name: str = "pawatch.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_default_lists_the_real_sources() -> None:
    settings = default_settings()
    urls = " ".join(s.url for s in settings.sources)
    for host in (
        "pacsto.org",
        "paodkb.org",
        "house.gov.by",
        "sovrep.gov.by",
        "parlam.kz",
        "kenesh.kg",
        "duma.gov.ru",
        "council.gov.ru",
        "majmilli.tj",
        "parlament.tj",
        "parliament.am",
    ):
        assert host in urls, host
    assert {s.parser for s in settings.sources} == {
        "delegations",
        "delegation-page",
        "news-list",
        "roster",
        "page",
    }
    assert len({s.id for s in settings.sources}) == len(settings.sources)
    assert settings.http.per_host_concurrency == 2 and settings.http.per_host_delay == 1.0


def test_sources_only_config_takes_defaults_and_replaces_the_list(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert [s.id for s in settings.sources] == ["one"]
    src = settings.sources[0]
    assert src.enabled and src.confirm == 1 and src.schedule.interval == timedelta(hours=6)
    assert settings.http.timeout == 30 and settings.http.respect_robots is True
    # relative storage path in the default resolves against the working directory
    assert settings.storage.path == "pawatch.db"


def test_include_default_sources_extends_the_bundled_list(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "include_default_sources = true\n" + MINIMAL))
    assert settings.sources[-1].id == "one"
    assert len(settings.sources) == len(default_settings().sources) + 1


def test_user_settings_override_and_paths_resolve_against_the_file(tmp_path: Path) -> None:
    text = '[storage]\npath = "data/w.db"\n[http]\nper_host_delay = 0\ntimeout = 5\n' + MINIMAL
    settings = load_settings(write(tmp_path, text))
    assert settings.storage.path == str(tmp_path / "data/w.db")
    assert settings.http.per_host_delay == 0.0 and settings.http.timeout == 5.0
    assert settings.http.per_host_concurrency == 2  # untouched keys keep defaults


def test_env_variables_choose_config_and_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAWATCH_CONFIG", str(write(tmp_path, MINIMAL)))
    monkeypatch.setenv("PAWATCH_DB", str(tmp_path / "env.db"))
    settings = load_settings()
    assert [s.id for s in settings.sources] == ["one"]
    assert settings.storage.path == str(tmp_path / "env.db")


BAD = [
    ("unknown top key", "colour = 1\n", "colour", "unknown key"),
    ("unknown http key", "[http]\nuser_agnet = 'x'\n", "http.user_agnet", "unknown key"),
    ("wrong type", "[http]\ntimeout = 'soon'\n", "http.timeout", "expected a number > 0"),
    ("bool is not a number", "[http]\nmax_bytes = true\n", "http.max_bytes", "whole number"),
    ("negative delay", "[http]\nper_host_delay = -1\n", "http.per_host_delay", ">= 0"),
    (
        "bad url scheme",
        "[[sources]]\nid='a'\nurl='ftp://x.org/'\nparser='page'\n",
        "sources[0] (a).url",
        "http:// or https://",
    ),
    (
        "bad schedule",
        "[[sources]]\nid='a'\nurl='https://x.org/'\nparser='page'\nschedule='6 hours'\n",
        "sources[0] (a).schedule",
        "interval like '30m'",
    ),
    (
        "bad cron",
        "[[sources]]\nid='a'\nurl='https://x.org/'\nparser='page'\nschedule='61 * * * *'\n",
        "sources[0] (a).schedule",
        "cron",
    ),
    (
        "unknown parser",
        "[[sources]]\nid='a'\nurl='https://x.org/'\nparser='magic'\n",
        "sources[0] (a).parser",
        "expected one of delegations",
    ),
    ("missing url", "[[sources]]\nid='a'\nparser='page'\n", "sources[0] (a).url", "missing"),
    (
        "unknown source key",
        "[[sources]]\nid='a'\nurl='https://x.org/'\nparser='page'\nshedule='6h'\n",
        "sources[0] (a).shedule",
        "unknown key",
    ),
    (
        "duplicate id",
        "[[sources]]\nid='a'\nurl='https://x.org/'\nparser='page'\n"
        "[[sources]]\nid='a'\nurl='https://y.org/'\nparser='page'\n",
        "sources[1].id",
        "duplicate source id 'a'",
    ),
    (
        "bad id",
        "[[sources]]\nid='Has Space'\nurl='https://x.org/'\nparser='page'\n",
        "sources[0] (Has Space).id",
        "lowercase",
    ),
    (
        "bad encoding",
        "[[sources]]\nid='a'\nurl='https://x.org/'\nparser='page'\nencoding='klingon'\n",
        "sources[0] (a).encoding",
        "character encoding",
    ),
    (
        "bad header",
        "[[sources]]\nid='a'\nurl='https://x.org/'\nparser='page'\nheaders={'Accept'=1}\n",
        "sources[0] (a).headers",
        "one-line string",
    ),
    (
        "bad delegation",
        "[[sources]]\nid='a'\nurl='https://x.org/'\nparser='page'\ndelegation='kyrgyzstan'\n",
        "sources[0] (a).delegation",
        "like 'KG'",
    ),
    (
        "missing ca bundle",
        "[[sources]]\nid='a'\nurl='https://x.org/'\nparser='page'\nca_bundle='nope.pem'\n",
        "sources[0] (a).ca_bundle",
        "does not exist",
    ),
    ("bad timezone", "timezone = 'Mars/Olympus'\n", "timezone", "IANA time zone"),
    ("not toml", "[http\n", "", "not valid TOML"),
    ("sources not array", "sources = 3\n", "sources", "array"),
]


@pytest.mark.parametrize(("name", "text", "key", "expected"), BAD, ids=[b[0] for b in BAD])
def test_invalid_config_names_file_key_and_expectation(
    tmp_path: Path, name: str, text: str, key: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert info.value.key == key, message
    assert expected in message, message
    assert "\n" not in message


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("6h", 21600), ("1d", 86400), ("45s", 45), ("2w", 1209600)]
)
def test_interval_schedules(text: str, seconds: int) -> None:
    assert Schedule.parse(text).interval == timedelta(seconds=seconds)


def test_cron_schedule_is_due_after_its_next_fire_time() -> None:
    sched = Schedule.parse("0 9 * * sun")
    last = datetime(2026, 11, 22, 9, 0, 1, tzinfo=UTC)  # a Sunday, just after 09:00
    assert not sched.is_due(last, datetime(2026, 11, 28, 23, 0, tzinfo=UTC))
    assert sched.is_due(last, datetime(2026, 11, 29, 9, 0, 1, tzinfo=UTC))
    assert sched.is_due(None, last)


def test_interval_schedule_is_due() -> None:
    sched = Schedule.parse("6h")
    last = datetime(2026, 1, 1, tzinfo=UTC)
    assert not sched.is_due(last, last + timedelta(hours=5, minutes=59))
    assert sched.is_due(last, last + timedelta(hours=6))


def test_config_from_text_errors_name_the_label() -> None:
    with pytest.raises(ConfigError, match=r"^demo\.toml: http\.retries: expected a whole"):
        settings_from_text("[http]\nretries = 1.5\n", "demo.toml")
