"""Shared fixtures: a local HTTP server on 127.0.0.1 and configs pointing at it."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from pawatch.demo.localserver import LocalServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sigint_default() -> Iterator[None]:
    """Children started during the test react to SIGINT even when the test run ignores it (a
    background job of a non-interactive shell does, and an ignored signal stays ignored
    across exec, while a handler set here is reset to the default action)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer("127.0.0.1") as srv:
        yield srv


def source_block(source_id: str, url: str, parser: str = "page", **extra: object) -> str:
    lines = ["[[sources]]", f'id = "{source_id}"', f'url = "{url}"', f'parser = "{parser}"']
    for key, value in extra.items():
        lines.append(
            f"{key} = {value!r}".replace("'", '"')
            if isinstance(value, str)
            else f"{key} = {str(value).lower() if isinstance(value, bool) else value}"
        )
    return "\n".join(lines) + "\n"


TEST_HTTP = {
    "per_host_delay": 0,
    "per_host_concurrency": 4,
    "retries": 1,
    "backoff_base": 0.05,
    "timeout": 5,
    "connect_timeout": 2,
    "read_timeout": 3,
}


def write_config(tmp_path: Path, sources: str, **http: float) -> Path:
    """A config for tests: fast politeness, few retries, DB in tmp_path."""
    settings = {**TEST_HTTP, **http}
    text = (
        f'[storage]\npath = "{tmp_path / "pawatch.db"}"\n[http]\n'
        + "".join(f"{k} = {v}\n" for k, v in settings.items())
        + sources
    )
    path = tmp_path / "pawatch.toml"
    path.write_text(text, encoding="utf-8")
    return path
