"""``pawatch try``: what a parser reads from a page, before the page becomes a source.

One fetch (same HTTP settings and politeness as ``run``: robots.txt, User-Agent, timeouts), a
saved file (``--file``) or a stored snapshot (``--snapshot``, the database opened read-only),
then the parser: its facts, records, warnings, the parse status and why it failed. Nothing is
written to any database.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import tomllib
from pathlib import Path
from typing import Any

import click

from pawatch.cli.common import (
    EXIT_FAILURES,
    EXIT_OK,
    Context,
    delegation_id,
    echo,
    fail,
    format_option,
)
from pawatch.config import ConfigError, Source
from pawatch.scraper.errors import FetchError
from pawatch.scraper.parsers import PARSERS, ParseResult, get_parser, read_page
from pawatch.settings import settings_from_text
from pawatch.storage.bodytext import decompress_body


@dataclasses.dataclass
class Page:
    """The body to parse and where it came from."""

    body: bytes
    url: str
    content_type: str | None
    origin: str  # "fetched 200", "file x.html", "snapshot 3 of demo-kg (2026-...)"


def _option_value(text: str) -> Any:
    """A TOML value when ``text`` is one (``3``, ``true``, ``["a", "b"]``), else the string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--option {pair!r}: expected KEY=VALUE, e.g. --option item=.card")
        options[key.strip()] = _option_value(value.strip())
    return options


def _source(
    url: str, parser: str, delegation: str | None, options: dict[str, Any], encoding: str | None
) -> Source:
    """The source as the config loader would build it: the parser and options are checked."""
    lines = [
        "[[sources]]",
        'id = "try"',
        f"url = {json.dumps(url)}",
        f"parser = {json.dumps(parser)}",
    ]
    if delegation:
        lines.append(f"delegation = {json.dumps(delegation)}")
    if encoding:
        lines.append(f"encoding = {json.dumps(encoding)}")
    lines.append("[sources.options]")
    lines += [f"{json.dumps(k)} = {_toml(v)}" for k, v in options.items()]
    try:
        settings = settings_from_text("\n".join(lines) + "\n", "<pawatch try>")
    except ConfigError as exc:
        message = re.sub(r"^.*?sources\[0\] \(try\)\.", "", str(exc))
        fail(re.sub(r"^options\.", "--option ", message))
    return settings.sources[0]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # numbers and strings: JSON spells them as TOML does


def _stored(db_path: str, snapshot_id: int) -> tuple[Page, dict[str, Any]]:
    """A stored snapshot and its source's row, read through a read-only connection."""
    if not Path(db_path).exists():
        fail(f"no database at {db_path}: --snapshot reads a stored snapshot")
    # Without a -wal file the main file holds everything: immutable reads create no -wal or
    # -shm file. With one (a writer has it open), read-only through it, to see recent checks.
    live = Path(f"{db_path}-wal").exists()
    uri = Path(db_path).resolve().as_uri() + ("?mode=ro" if live else "?immutable=1")
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            row = conn.execute(
                "SELECT s.url, s.content_type, s.source_id, s.first_seen, b.compression, b.data, "
                "src.parser, src.delegation FROM snapshots s JOIN bodies b ON b.sha256 = s.sha256 "
                "LEFT JOIN sources src ON src.id = s.source_id WHERE s.id = ?",
                (snapshot_id,),
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        fail(f"{db_path}: cannot read the database: {exc}")
    if row is None:
        fail(f"no snapshot {snapshot_id} in {db_path}")
    url, content_type, source_id, first_seen, compression, data, parser, delegation = row
    origin = f"snapshot {snapshot_id} of {source_id} (stored {first_seen})"
    page = Page(decompress_body(compression, data), url, content_type, origin)
    return page, {"id": source_id, "parser": parser, "delegation": delegation}


def _fetch(ctx: Context, source: Source) -> Page:
    import asyncio

    from pawatch.scraper.fetch import Fetcher  # httpx: loaded only when fetching

    async def once() -> Page:
        async with Fetcher(ctx.settings.http, [source]) as fetcher:
            result = await fetcher.fetch(source, None)
        return Page(result.body, result.final_url, result.content_type, f"fetched {result.status}")

    return asyncio.run(once())


def _read(source: Source, page: Page) -> tuple[str, ParseResult | None, str | None]:
    """(status, result, why) of parsing ``page`` as ``source`` says: ok, degraded, broken."""
    result, why = read_page(
        source, get_parser(source.parser), page.body, page.content_type, page.url
    )
    if why is not None:
        return "broken", result, why
    assert result is not None
    if result.unreadable:
        return "degraded", result, "; ".join(u.message for u in result.unreadable)
    return "ok", result, None


def _record(record: Any) -> dict[str, Any]:
    if not dataclasses.is_dataclass(record) or isinstance(record, type):
        return {"type": type(record).__name__, "value": str(record)}
    data = dataclasses.asdict(record)
    return {"type": type(record).__name__, **data}


def _report(
    source: Source, page: Page | None, status: str, why: str | None, result: Any
) -> dict[str, Any]:
    facts = result.facts() if result is not None and result.found else []
    return {
        "url": source.url,
        "parser": source.parser,
        "delegation": source.delegation,
        "options": source.options,
        "read_from": page.origin if page else None,
        "status": status,
        "error": why,
        "facts": [
            {"subject": f.subject, "attribute": f.attribute, "key": f.key, "value": f.value}
            for f in facts
        ],
        "items": [_record(r) for r in result.records] if result is not None else [],
        "warnings": list(result.warnings) if result is not None else [],
    }


def _show_text(report: dict[str, Any]) -> None:
    echo(f"{report['url']} read by parser {report['parser']}")
    if report["read_from"]:
        echo(f"  from: {report['read_from']}")
    status = report["status"].upper()
    echo(f"status: {status}" + (f": {report['error']}" if report["error"] else ""))
    echo(f"\nfacts ({len(report['facts'])}):")
    for f in report["facts"]:
        echo(f"  {f['subject']}  {f['attribute']}  {f['value']}")
    echo(f"\nitems ({len(report['items'])}):")
    for item in report["items"]:
        fields = ", ".join(
            f"{k}={str(v)[:80]!r}"
            for k, v in item.items()
            if k != "type" and v not in (None, "", [], ())
        )
        echo(f"  {item['type']}: {fields}")
    echo(f"\nwarnings ({len(report['warnings'])}):")
    for warning in report["warnings"]:
        echo(f"  {warning}")


@click.command("try")
@click.argument("url", required=False)
@click.option(
    "--parser",
    "parser",
    type=click.Choice(sorted(PARSERS)),
    help="Parser to read the page with (with --snapshot: default, the source's parser).",
)
@click.option("--delegation", metavar="ID", help="The delegation the page is about (e.g. KG).")
@click.option(
    "--option",
    "option_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parser option, as in [sources.options] (repeatable); VALUE is TOML or a string.",
)
@click.option("--encoding", metavar="CHARSET", help="Force this charset (as the source key).")
@click.option(
    "--source",
    "source_id",
    metavar="ID",
    help="Start from a configured source (`pawatch sources`): its URL, parser, delegation, "
    "options, encoding, headers and user agent; the other options override them.",
)
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False),
    help="Read a saved page instead of fetching URL (URL is then its address, optional).",
)
@click.option(
    "--snapshot",
    "snapshot_id",
    type=click.IntRange(min=1),
    metavar="ID",
    help="Re-read a stored snapshot (the database is opened read-only).",
)
@format_option("text", "json", help="Output format.")
@click.pass_obj
def try_(
    obj: Context,
    url: str | None,
    parser: str | None,
    delegation: str | None,
    option_pairs: tuple[str, ...],
    encoding: str | None,
    source_id: str | None,
    file: str | None,
    snapshot_id: int | None,
    fmt: str,
) -> None:
    """Show what a parser reads from a page, writing nothing: facts, records, warnings, the
    parse status and why it failed.

    \b
    pawatch try https://parliament.example/deputies --parser roster \\
        --delegation KG --option item=.deputy-card --option name=.deputy-name
    pawatch try --file saved.html --parser delegation-page --delegation KG
    pawatch try --file deputies.json --source kz-mazhilis-deputies
    pawatch try --snapshot 12 --option min_items=5

    Exit codes: 0 the page was read, 1 the fetch failed or the page cannot be read (broken)
    or is degraded, 2 usage error.
    """
    if file and snapshot_id:
        fail("give --file or --snapshot, not both")
    if source_id and snapshot_id:
        fail("--snapshot starts from the snapshot's own source: give --source or --snapshot")
    options = _parse_options(option_pairs)
    delegation = delegation_id(delegation) if delegation else None
    page: Page | None = None
    configured: Source | None = None
    if source_id is not None:
        configured = next((s for s in obj.settings.sources if s.id == source_id), None)
        if configured is None:
            fail(f"unknown source id {source_id!r} (see `pawatch sources`)")
        if parser is None or parser == configured.parser:
            options = {**configured.options, **options}
        parser = parser or configured.parser
        delegation = delegation or configured.delegation
        encoding = encoding or configured.encoding
        url = url or configured.url
    if snapshot_id is not None:
        page, row = _stored(obj.settings.storage.path, snapshot_id)
        configured = next((s for s in obj.settings.sources if s.id == row["id"]), None)
        same_parser = parser is None or parser == row["parser"]
        if configured is not None and same_parser:
            options = {**configured.options, **options}
        if configured is not None:
            encoding = encoding or configured.encoding
        parser = parser or row["parser"]
        delegation = delegation or row["delegation"]
        url = url or page.url
    elif file is not None:
        body = Path(file).read_bytes()
        url = url or f"http://localhost/{Path(file).name}"  # links resolve against it
        page = Page(body, url, None, f"file {file}")
    if url is None:
        fail("give a URL, --file PATH or --snapshot ID")
    if parser is None:
        fail("--parser NAME is required (one of: " + ", ".join(sorted(PARSERS)) + ")")
    source = _source(url, parser, delegation, options, encoding)
    if configured is not None:  # its HTTP settings (headers, user agent, proxy, CA) too
        source = dataclasses.replace(
            configured,
            url=source.url,
            parser=source.parser,
            delegation=source.delegation,
            options=source.options,
            encoding=source.encoding,
        )

    if page is None:
        try:
            page = _fetch(obj, source)
        except FetchError as exc:
            report = _report(source, None, "failed", f"fetch failed ({exc.kind}): {exc}", None)
            _emit(report, fmt)
            raise SystemExit(EXIT_FAILURES) from None
    status, result, why = _read(source, page)
    _emit(_report(source, page, status, why, result), fmt)
    raise SystemExit(EXIT_OK if status == "ok" else EXIT_FAILURES)


def _emit(report: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    else:
        _show_text(report)
