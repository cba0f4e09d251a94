"""Load and validate TOML configuration: the bundled default, then a user file over it.

Every problem stops at load with a ``ConfigError`` that names the file, the key and what was
expected, e.g. ``config.toml: sources[2].schedule: expected an interval like '6h' or a
five-field cron expression, got '6 hours'``.
"""

from __future__ import annotations

import codecs
import math
import os
import pkgutil
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pawatch.config.model import (
    CHANNEL_KINDS,
    DELIVER_AFTER_CHECKS,
    DELIVER_OFF,
    MAX_JITTER,
    SECURITY_MODES,
    ChannelSettings,
    DaemonSettings,
    EmailSettings,
    FeedSettings,
    HttpSettings,
    OptionSpec,
    ReportSettings,
    Schedule,
    Settings,
    Source,
    StorageSettings,
)
from pawatch.display import redact_url
from pawatch.times import looks_like_period, parse_schedule_period

ENV_CONFIG = "PAWATCH_CONFIG"
MAX_CONFIG_BYTES = 10_000_000
ENV_DB = "PAWATCH_DB"
_SOURCE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


class ConfigError(Exception):
    """Invalid configuration; ``str()`` is one line naming the file, the key and the problem."""

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file, self.key, self.message = file, key, message
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


Check = Callable[[Any], Any]  # returns the converted value or raises ValueError("expected ...")


# A parser name -> its options; the scraper owns the registry, the loader checks against it.
ParserCatalog = Mapping[str, Mapping[str, OptionSpec]]


def _expect(kind: str, ok: Callable[[Any], bool]) -> Check:
    def check(value: Any) -> Any:
        if not ok(value):
            raise ValueError(f"expected {kind}, got {_show(value)}")
        return value

    return check


def _show(value: Any) -> str:
    name = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), type(value).__name__
    )
    text = repr(value)
    return f"{name} {text if len(text) < 60 else text[:57] + '...'}"


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_str = _expect("a string", lambda v: isinstance(v, str))
_nonempty_str = _expect("a non-empty string", lambda v: isinstance(v, str) and v.strip() != "")
_bool = _expect("true or false", lambda v: isinstance(v, bool))
_header_text = _expect(  # a User-Agent: sent as a header, so one line without controls
    "a non-empty one-line string without control characters",
    lambda v: isinstance(v, str) and v.strip() != "" and not re.search(r"[\x00-\x1f\x7f]", v),
)


def _whole(low: int, high: int) -> Check:
    """A whole number from ``low`` to ``high`` (README "Config ranges")."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high:_}, got {_show(value)}")
        return value

    return check


def _number(low: float, high: float, *, zero: bool = True, what: str = "a number") -> Check:
    """A finite number from ``low`` (excluded unless ``zero``) to ``high``: nan and inf never
    pass (a comparison with nan is always false, so each bound is checked as "inside")."""

    def check(value: Any) -> float:
        finite = _is_num(value) and math.isfinite(value)
        if finite and low <= value <= high and (zero or value > low):
            return float(value)
        bound = f">= {low:g}" if zero else f"> {low:g}"
        raise ValueError(f"expected {what} {bound} and <= {high:g}, got {_show(value)}")

    return check


_non_negative = _number(0, 3600)  # seconds
_positive = _number(0, 3600, zero=False)  # seconds
_ratio = _number(0, 1)

_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f]")  # spaces, newlines, other controls


def _url(value: Any, schemes: tuple[str, ...], kind: str) -> str:
    _str(value)
    shown = redact_url(value)
    shown = shown if len(shown) <= 200 else shown[:197] + "..."
    if _URL_FORBIDDEN.search(value):
        raise ValueError(f"expected {kind} without spaces or control characters, got {shown!r}")
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"expected {kind}, got {shown!r}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"expected {kind} with a port from 1 to 65535, got {shown!r}")
    return str(value)


def _parse_timeout(value: Any) -> float:
    if not _is_num(value) or not 0.1 <= value <= 600:
        raise ValueError(f"expected a number of seconds from 0.1 to 600, got {_show(value)}")
    return float(value)


def _http_url(value: Any) -> str:
    return _url(value, ("http", "https"), "an http:// or https:// URL with a host")


def _proxy_url(value: Any) -> str:
    return _url(
        value, ("http", "https", "socks5", "socks5h"), "a proxy URL (http://, https://, socks5://)"
    )


def _schedule(value: Any) -> Schedule:
    _str(value)
    try:
        return Schedule.parse(value)
    except ValueError as exc:
        raise ValueError(
            f"expected an interval like '30m', '6h', '1d' or a five-field cron expression "
            f"like '0 */6 * * *' ({exc})"
        ) from None


def _encoding(value: Any) -> str:
    _str(value)
    try:
        name = codecs.lookup(value).name
    except LookupError:
        raise ValueError(f"expected a known character encoding, got {value!r}") from None
    try:  # str.encode/bytes.decode accept only text encodings: base64, hex, rot13 ... fail
        "".encode(name)
        b"".decode(name)
    except LookupError:
        raise ValueError(
            f"expected a text encoding like 'utf-8' or 'windows-1251', got {value!r}"
        ) from None
    return name


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a table of header names to strings, got {_show(value)}")
    for name, val in value.items():
        if not _HEADER_NAME_RE.match(name):
            raise ValueError(f"expected valid HTTP header names, got {name!r}")
        if not isinstance(val, str) or "\n" in val or "\r" in val:
            raise ValueError(f"expected header {name!r} to be a one-line string, got {_show(val)}")
    return dict(value)


def _source_id(value: Any) -> str:
    _str(value)
    if not _SOURCE_ID_RE.match(value):
        raise ValueError(
            "expected an id of lowercase letters, digits, '-', '_' or '.' (at most 64), "
            f"got {value!r}"
        )
    return str(value)


def _parser(value: Any) -> str:
    _str(value)
    return str(value)  # the name is checked against the parser catalog in _check_options


def _delegation(value: Any) -> str:
    _str(value)
    if not re.match(r"^[A-Z]{2}$|^x-[a-z0-9-]+$", value):
        raise ValueError(
            f"expected a delegation id like 'KG' (or 'x-<slug>' for one not in the registry), "
            f"got {value!r}"
        )
    return str(value)


def _table(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a table, got {_show(value)}")
    return value


_STORAGE_KEYS: dict[str, Check] = {"path": _nonempty_str}
_HTTP_KEYS: dict[str, Check] = {
    "user_agent": _header_text,
    "per_host_concurrency": _whole(1, 64),
    "per_host_delay": _non_negative,
    "global_concurrency": _whole(1, 1024),
    "timeout": _positive,
    "connect_timeout": _positive,
    "read_timeout": _positive,
    "max_bytes": _whole(1, 1_000_000_000),
    "parse_timeout": _parse_timeout,
    "max_redirects": _whole(0, 50),
    "retries": _whole(0, 20),
    "backoff_base": _non_negative,
    "backoff_max": _non_negative,
    "retry_after_max": _non_negative,
    "respect_robots": _bool,
    "keep_alive": _bool,
    "fetch_processes": _whole(0, 64),
    "headers": _headers,
    "proxy": _proxy_url,
    "ca_bundle": _nonempty_str,
}
_SOURCE_KEYS: dict[str, Check] = {
    "id": _source_id,
    "url": _http_url,
    "parser": _parser,
    "schedule": _schedule,
    "delegation": _delegation,
    "enabled": _bool,
    "confirm": _whole(1, 100),
    "failing_after": _whole(1, 1000),
    "collapse_ratio": _ratio,
    "headers": _headers,
    "user_agent": _header_text,
    "proxy": _proxy_url,
    "ca_bundle": _nonempty_str,
    "encoding": _encoding,
    "timeout": _positive,
    "options": _table,
}
_SOURCE_REQUIRED = ("id", "url", "parser")
_TOP_KEYS = {"storage", "http", "sources", "timezone", "include_default_sources", "email"}
_TOP_KEYS.add("daemon")
_TOP_KEYS |= {"report", "feed", "channels"}

# ------------------------------------------------------------------ [email]
_ADDRESS_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _address(value: Any) -> str:
    """A plain ASCII address ``user@host`` (no display name)."""
    if not isinstance(value, str) or not _ADDRESS_RE.match(value):
        raise ValueError(f"expected an email address like 'desk@example.org', got {_show(value)}")
    return value


def _sender(value: Any) -> str:
    """An address, optionally with a display name: ``pawatch <pawatch@example.org>``."""
    from email.utils import parseaddr

    if isinstance(value, str) and "\n" not in value and "\r" not in value:
        name, addr = parseaddr(value)
        if _ADDRESS_RE.match(addr) and (name or addr == value.strip()):
            return value.strip()
    raise ValueError(
        "expected an email address like 'pawatch@example.org' or "
        f"'pawatch <pawatch@example.org>', got {_show(value)}"
    )


def _addresses(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of email addresses, got {_show(value)}")
    return tuple(_address(v) for v in value)


def _delegation_addresses(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ValueError(
            f'expected a table like {{ KG = ["kg-desk@example.org"] }}, got {_show(value)}'
        )
    out: dict[str, tuple[str, ...]] = {}
    for key, addresses in value.items():
        try:
            _delegation(key)
            out[key] = _addresses(addresses)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    return out


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"expected a port number from 1 to 65535, got {_show(value)}")
    return value


def _security(value: Any) -> str:
    if value not in SECURITY_MODES:
        raise ValueError(f"expected one of {', '.join(SECURITY_MODES)}, got {_show(value)}")
    return str(value)


def _env_name(value: Any) -> str:
    if not isinstance(value, str) or not _ENV_NAME_RE.match(value):
        raise ValueError(
            f"expected the name of an environment variable like 'PAWATCH_SMTP_PASSWORD', "
            f"got {_show(value)}"
        )
    return value


def _period(value: Any) -> timedelta | None:
    """An interval like '1d' or '12h' (as a schedule's, pawatch.times); 'off' for none."""
    if value == "off":
        return None
    if isinstance(value, str):
        try:
            return parse_schedule_period(value)
        except ValueError as exc:
            reason = f" ({exc})" if looks_like_period(value) else ""
    else:
        reason = ""
    raise ValueError(
        f"expected an interval like '6h', '1d', '1w' or 'off', got {_show(value)}{reason}"
    )


def _one_line(value: Any) -> str:
    if not isinstance(value, str) or "\n" in value or "\r" in value:
        raise ValueError(f"expected a one-line string, got {_show(value)}")
    return value


MAX_RESENDS = 100  # email.max_resends: 0 (never re-send an unconfirmed message) to 100

_EMAIL_KEYS: dict[str, Check] = {
    "smtp_host": _nonempty_str,
    "sender": _sender,
    "recipients": _addresses,
    "delegation_recipients": _delegation_addresses,
    "smtp_port": _port,
    "security": _security,
    "username": _nonempty_str,
    "password_env": _env_name,
    "timeout": _positive,
    "digest": _period,
    "health_repeat": _period,
    "subject_prefix": _one_line,
    "ca_bundle": _nonempty_str,
    "max_resends": _whole(0, MAX_RESENDS),
}


def _parse_email(
    file: str, base: Path | None, raw: dict[str, Any], current: EmailSettings | None
) -> EmailSettings:
    if "password" in raw:
        raise ConfigError(
            file,
            "email.password",
            "a password is never read from the config file; put it in an environment "
            "variable and name that variable in email.password_env",
        )
    values = _check_table(file, "email", raw, _EMAIL_KEYS)
    if "ca_bundle" in values:
        values["ca_bundle"] = _resolve_path(base, values["ca_bundle"])
        if not Path(values["ca_bundle"]).is_file():
            raise ConfigError(
                file,
                "email.ca_bundle",
                f"expected an existing file, {values['ca_bundle']!r} does not exist",
            )
    if current is not None:
        values = {f.name: getattr(current, f.name) for f in fields(EmailSettings)} | values
    for key in ("smtp_host", "sender"):
        if key not in values:
            raise ConfigError(file, f"email.{key}", "missing; [email] needs smtp_host and sender")
    if not values.get("recipients") and not any(values.get("delegation_recipients", {}).values()):
        raise ConfigError(
            file,
            "email.recipients",
            "expected at least one address in recipients or delegation_recipients",
        )
    if bool(values.get("username")) != bool(values.get("password_env")):
        missing = "password_env" if values.get("username") else "username"
        raise ConfigError(
            file, f"email.{missing}", "username and password_env go together; set both or neither"
        )
    return EmailSettings(**values)


assert set(_HTTP_KEYS) == {f.name for f in fields(HttpSettings)}
assert set(_EMAIL_KEYS) == {f.name for f in fields(EmailSettings)}
assert set(_SOURCE_KEYS) == {f.name for f in fields(Source)}


def _check_table(
    file: str, prefix: str, raw: Mapping[str, Any], spec: Mapping[str, Check]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{prefix}.{key}" if prefix else key
        if key not in spec:
            raise ConfigError(file, where, f"unknown key; expected one of {', '.join(spec)}")
        try:
            out[key] = spec[key](value)
        except ValueError as exc:
            raise ConfigError(file, where, str(exc)) from None
    return out


def _resolve_path(base: Path | None, value: str) -> str:
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    return str(path)


def _check_options(
    file: str, where: str, parser: str, options: dict[str, Any], parsers: ParserCatalog
) -> None:
    if parser not in parsers:
        known = ", ".join(parsers)
        raise ConfigError(file, f"{where}.parser", f"expected one of {known}, got {parser!r}")
    spec = parsers[parser]
    for key, value in options.items():
        if key not in spec:
            known = ", ".join(sorted(spec)) or "none"
            raise ConfigError(
                file,
                f"{where}.options.{key}",
                f"unknown option for parser {parser!r}; expected one of: {known}",
            )
        expected = spec[key].type
        if isinstance(value, bool) and bool not in (
            expected if isinstance(expected, tuple) else (expected,)
        ):
            ok = False
        else:
            ok = isinstance(value, expected)
        if not ok:
            names = (
                " or ".join(t.__name__ for t in expected)
                if isinstance(expected, tuple)
                else expected.__name__
            )
            raise ConfigError(
                file, f"{where}.options.{key}", f"expected {names}, got {_show(value)}"
            )
        check = spec[key].check
        if check is not None:
            try:
                check(value)
            except ValueError as exc:
                raise ConfigError(file, f"{where}.options.{key}", str(exc)) from None
    for key, opt in spec.items():
        if opt.required and key not in options:
            raise ConfigError(
                file, f"{where}.options.{key}", f"required by parser {parser!r}: {opt.help}"
            )


def _parse_source(
    file: str, base: Path | None, index: int, raw: Any, parsers: ParserCatalog
) -> Source:
    where = f"sources[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(file, where, f"expected a [[sources]] table, got {_show(raw)}")
    if isinstance(raw.get("id"), str):
        where = f"sources[{index}] ({raw['id']})"
    values = _check_table(file, where, raw, _SOURCE_KEYS)
    for key in _SOURCE_REQUIRED:
        if key not in values:
            raise ConfigError(
                file, f"{where}.{key}", "missing; every source needs id, url and parser"
            )
    for key in ("ca_bundle",):
        if key in values:
            values[key] = _resolve_path(base, values[key])
            if not Path(values[key]).is_file():
                raise ConfigError(
                    file,
                    f"{where}.{key}",
                    f"expected an existing file, {values[key]!r} does not exist",
                )
    _check_options(file, where, values["parser"], values.get("options", {}), parsers)
    return Source(**values)


# The [daemon] table.
def _seconds(low: float, high: float, *, zero: bool = True) -> Check:
    return _number(low, high, zero=zero, what="a number of seconds")


def _deliver(value: Any) -> str:
    if value in (DELIVER_AFTER_CHECKS, DELIVER_OFF):
        return str(value)
    if isinstance(value, str):
        try:
            return Schedule.parse(value).text
        except ValueError:
            pass
    raise ValueError(
        f"expected {DELIVER_AFTER_CHECKS!r}, {DELIVER_OFF!r}, an interval like '1h' or a "
        f"five-field cron expression like '0 9 * * mon-fri', got {_show(value)}"
    )


DAEMON_KEYS: dict[str, Callable[[Any], Any]] = {
    "jitter": _seconds(0, MAX_JITTER),
    "grace_period": _seconds(0, 3600),
    "misfire_grace_time": _seconds(1, 86400),
    "deliver": _deliver,
    "heartbeat_interval": _seconds(0.2, 3600),
    "lock_timeout": _seconds(0, 86400),
}

assert set(DAEMON_KEYS) == {f.name for f in fields(DaemonSettings)}


# ------------------------------------------------------------------ [report], [feed], [[channels]]


def _base_url(value: Any) -> str:
    return _http_url(value).rstrip("/")


def _max_entries(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise ValueError(f"expected a whole number from 1 to 10000, got {_show(value)}")
    return value


REPORT_KEYS: dict[str, Check] = {"base_url": _base_url}
FEED_KEYS: dict[str, Check] = {
    "path": _nonempty_str,
    "title": _one_line,
    "id": _one_line,
    "link": _http_url,
    "max_entries": _max_entries,
}
assert set(REPORT_KEYS) == {f.name for f in fields(ReportSettings)}
assert set(FEED_KEYS) == {f.name for f in fields(FeedSettings)}


def _channel_kind(value: Any) -> str:
    if value not in CHANNEL_KINDS:
        raise ValueError(f"expected one of {', '.join(CHANNEL_KINDS)}, got {_show(value)}")
    return str(value)


def _delegation_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of delegation ids like ['KG'], got {_show(value)}")
    return tuple(_delegation(v) for v in value)


def _kind_list(value: Any) -> tuple[str, ...]:
    from pawatch.domain import CHANGE_KINDS, HEALTH_KINDS

    known = (*CHANGE_KINDS, *HEALTH_KINDS)
    if not isinstance(value, list) or not all(v in known for v in value):
        raise ValueError(
            f"expected a list of event kinds from {', '.join(known)}, got {_show(value)}"
        )
    return tuple(value)


def _channel_timeout(value: Any) -> float:
    if not _is_num(value) or not 0 < value <= 600:
        raise ValueError(f"expected seconds from 0 to 600, got {_show(value)}")
    return float(value)


CHANNEL_KEYS: dict[str, Check] = {
    "name": _source_id,
    "kind": _channel_kind,
    "url": _nonempty_str,
    "delegations": _delegation_list,
    "kinds": _kind_list,
    "timeout": _channel_timeout,
}
assert set(CHANNEL_KEYS) == {f.name for f in fields(ChannelSettings)}


def _parse_channels(file: str, raw: Any) -> tuple[ChannelSettings, ...]:
    if not isinstance(raw, list):
        raise ConfigError(file, "channels", "expected an array of [[channels]] tables")
    out: list[ChannelSettings] = []
    for i, table in enumerate(raw):
        where = f"channels[{i}]"
        if not isinstance(table, dict):
            raise ConfigError(file, where, f"expected a table, got {_show(table)}")
        values = _check_table(file, where, table, CHANNEL_KEYS)
        for key in ("name", "kind", "url"):
            if key not in values:
                raise ConfigError(
                    file, f"{where}.{key}", "missing; a channel needs name, kind, url"
                )
        try:
            values["url"] = _channel_url(values["kind"], values["url"])
        except ValueError as exc:
            raise ConfigError(file, f"{where}.url", str(exc)) from None
        if values["name"] in {c.name for c in out} or values["name"] == "all":
            raise ConfigError(file, f"{where}.name", f"duplicate channel name {values['name']!r}")
        out.append(ChannelSettings(**values))
    return tuple(out)


def _channel_url(kind: str, url: str) -> str:
    if kind == "webhook":
        return _http_url(url)
    if kind == "email":
        if not url.startswith("mailto:") or not url[7:]:
            raise ValueError(f"expected mailto:address[,address], got {url!r}")
        for address in url[7:].split(","):
            _address(address.strip())
        return url
    if "://" not in url or any(c.isspace() for c in url):
        raise ValueError(f"expected an Apprise URL like 'tgram://token/chat', got {url!r}")
    return url


def _read_toml(path: Path, label: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)  # bounded: --config /dev/zero must not hang
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(label, "", f"larger than {MAX_CONFIG_BYTES:_} bytes: not a config")
        return tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(label, "", "file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            label, "", f"not UTF-8 text (byte {exc.start}): a config file is UTF-8 TOML"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(label, "", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(label, "", f"cannot read: {exc.strerror}") from None


def parse_config(
    data: Mapping[str, Any],
    file: str,
    base: Path | None,
    defaults: Settings,
    parsers: ParserCatalog,
) -> Settings:
    """Apply one parsed TOML document over ``defaults``; raise ConfigError on any problem."""
    for key in data:
        if key not in _TOP_KEYS:
            expected = ", ".join(sorted(_TOP_KEYS))
            raise ConfigError(file, key, f"unknown key; expected one of {expected}")
    settings = defaults
    if "storage" in data:
        values = _check_table(file, "storage", _table_at(file, "storage", data), _STORAGE_KEYS)
        if "path" in values:
            values["path"] = _resolve_path(base, values["path"])
        settings = replace(settings, storage=replace(settings.storage, **values))
    if "http" in data:
        values = _check_table(file, "http", _table_at(file, "http", data), _HTTP_KEYS)
        if "ca_bundle" in values:
            values["ca_bundle"] = _resolve_path(base, values["ca_bundle"])
        settings = replace(settings, http=replace(settings.http, **values))
    if "timezone" in data:
        settings = replace(settings, timezone=_timezone(file, data["timezone"]))
    if "email" in data:
        email = _parse_email(file, base, _table_at(file, "email", data), settings.email)
        settings = replace(settings, email=email)
    if "daemon" in data:
        values = _check_table(file, "daemon", _table_at(file, "daemon", data), DAEMON_KEYS)
        settings = replace(settings, daemon=replace(settings.daemon, **values))
    if "report" in data:
        values = _check_table(file, "report", _table_at(file, "report", data), REPORT_KEYS)
        settings = replace(settings, report=replace(settings.report, **values))
    if "feed" in data:
        values = _check_table(file, "feed", _table_at(file, "feed", data), FEED_KEYS)
        if "path" in values:
            values["path"] = _resolve_path(base, values["path"])
        settings = replace(settings, feed=replace(settings.feed, **values))
    if "channels" in data:
        settings = replace(settings, channels=_parse_channels(file, data["channels"]))
    if "sources" in data:
        raw_sources = data["sources"]
        if not isinstance(raw_sources, list):
            raise ConfigError(file, "sources", "expected an array of [[sources]] tables")
        extend = data.get("include_default_sources", False)
        if not isinstance(extend, bool):
            raise ConfigError(
                file, "include_default_sources", f"expected true or false, got {_show(extend)}"
            )
        sources = [_parse_source(file, base, i, raw, parsers) for i, raw in enumerate(raw_sources)]
        if extend:
            own = {s.id for s in sources}
            sources = [s for s in settings.sources if s.id not in own] + sources
        seen: dict[str, int] = {}
        for i, src in enumerate(sources):
            if src.id in seen:
                raise ConfigError(
                    file,
                    f"sources[{i}].id",
                    f"duplicate source id {src.id!r} (already used by sources[{seen[src.id]}])",
                )
            seen[src.id] = i
        settings = replace(settings, sources=tuple(sources))
    return replace(settings, config_files=(*settings.config_files, file))


def _table_at(file: str, key: str, data: Mapping[str, Any]) -> dict[str, Any]:
    value = data[key]
    if not isinstance(value, dict):
        raise ConfigError(file, key, f"expected a [{key}] table, got {_show(value)}")
    return value


def _timezone(file: str, value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(_str(value))
    except (ValueError, ZoneInfoNotFoundError):
        raise ConfigError(
            file,
            "timezone",
            f"expected an IANA time zone like 'UTC' or 'Europe/Moscow', got {_show(value)}",
        ) from None
    return str(value)


def load_default(parsers: ParserCatalog) -> Settings:
    """The bundled default configuration (config/default.toml)."""
    # pkgutil.get_data: the package's own loader reads the file; importlib.resources would
    # cost ~5 ms of imports (tempfile, random, zipfile) at every start
    raw = pkgutil.get_data("pawatch.config", "default.toml")
    assert raw is not None, "the bundled default.toml is unreadable"
    label = "<bundled config/default.toml>"
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - guarded by a test
        raise ConfigError(label, "", f"not valid TOML: {exc}") from None
    return parse_config(data, label, None, Settings(), parsers)


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    parsers: ParserCatalog,
    db: str | None = None,
) -> Settings:
    """Defaults, then the user file (``path``/``$PAWATCH_CONFIG``), then ``db``/``$PAWATCH_DB``.

    ``parsers`` is the catalog every source's ``parser`` and ``[sources.options]`` are checked
    against (the scraper's registry; ``pawatch.settings.load_settings`` passes it)."""
    settings = load_default(parsers)
    path = path if path is not None else os.environ.get(ENV_CONFIG) or None
    if path is not None:
        file = Path(path)
        data = _read_toml(file, str(file))
        settings = parse_config(data, str(file), file.resolve().parent, settings, parsers)
    db = db if db is not None else os.environ.get(ENV_DB) or None
    if db is not None:
        settings = replace(settings, storage=StorageSettings(path=str(Path(db).expanduser())))
    return settings


def config_from_text(
    text: str, file: str = "<text>", base: Path | None = None, *, parsers: ParserCatalog
) -> Settings:
    """Parse TOML text over the bundled default (for tests and the demo)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"not valid TOML: {exc}") from None
    return parse_config(data, file, base, load_default(parsers), parsers)
