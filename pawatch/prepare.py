"""One check of one source, up to what storage records: fetch, hash, compress, parse.

Pure steps on values (no database connection, no event loop of its own), shared by the two
places a check runs: the run's own process (``pawatch.pipeline``: parsing in a worker
process within the parse time limit) and a fetch process of a large run
(``pawatch.shards``: parsing inline, watched from outside).

``fetch_check`` is the one order of a check: fetch with the stored validators, read the
stored body when it is needed, skip the parser when the body is the one whose facts are
stored, else hash and compress the new body and ``analyse`` it (parse, diff the page text,
take its readable text).
"""

from __future__ import annotations

import difflib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

from pawatch.config import Source
from pawatch.scraper.errors import FetchError
from pawatch.scraper.fetch import Fetcher, FetchResult
from pawatch.scraper.fetch import Validators as HttpValidators
from pawatch.scraper.parsers import ParserSpec, get_parser, read_page
from pawatch.scraper.parsers.records import NewsItem, PageText
from pawatch.storage import CheckInput, Snapshot, Validators
from pawatch.storage.bodytext import readable_text
from pawatch.storage.facts import Held, NewsRow, ParseInput
from pawatch.storage.store import compress_body

log = logging.getLogger("pawatch.pipeline")

# What a check hands to its parse step (see ``fetch_check``): the check as recorded so far
# (body hashed and compressed), the fetch, the stored copy it compares with, whether the body
# is the stored one. The step returns the parse (None: nothing to record) and the new body's
# readable text.
Analysed = tuple[ParseInput | None, str | None]
ParseStep = Callable[
    [CheckInput, Source, ParserSpec, FetchResult, "Snapshot | None", bool],
    Awaitable[Analysed],
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_body(
    source: Source, spec: ParserSpec, body: bytes, content_type: str | None, url: str
) -> ParseInput:
    """Decode and parse one body; every failure becomes a ParseInput without facts."""
    result, why = read_page(
        source,
        spec,
        body,
        content_type,
        url,
        lambda: log.exception("parser %s crashed on %s", spec.name, url),
    )
    if result is None:
        return ParseInput(spec.version, None, error=why)
    if why is not None:
        return ParseInput(spec.version, None, error=why, warnings=result.warnings)
    news = [
        NewsRow(r.url, r.title, r.date, r.date_text, r.summary, r.text)
        for r in result.records
        if isinstance(r, NewsItem)
    ]
    texts = [r.text for r in result.records if isinstance(r, PageText)]
    return ParseInput(
        spec.version,
        result.facts(),
        warnings=result.warnings,
        news=news,
        text="\n".join(texts) if texts else None,
        held=[Held(u.subject, u.attribute_prefix, u.message) for u in result.unreadable],
    )


def text_diff(before: str, after: str) -> str:
    """A unified diff of two page texts (storage cuts long ones and says so)."""
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "before", "after", lineterm="", n=1
    )
    return "\n".join(lines)


def check_from_result(source: Source, result: FetchResult) -> CheckInput:
    return CheckInput(
        source_id=source.id,
        url=source.url,
        started_at=result.started_at,
        duration=result.duration,
        attempts=result.attempts,
        http_status=result.status,
        body=None if result.not_modified else result.body,
        not_modified=result.not_modified,
        final_url=result.final_url,
        content_type=result.content_type,
        etag=result.etag,
        last_modified=result.last_modified,
    )


def check_from_error(source: Source, started: datetime, error: Exception) -> CheckInput:
    duration = (utcnow() - started).total_seconds()
    if isinstance(error, FetchError):
        return CheckInput(
            source_id=source.id,
            url=source.url,
            started_at=started,
            duration=duration,
            attempts=error.attempts,
            http_status=error.status,
            error_kind=error.kind,
            error=str(error),
        )
    log.exception("internal error while fetching %s", source.id)
    return internal_failure(source, started, f"{type(error).__name__}: {error}", duration)


def internal_failure(
    source: Source, started: datetime, message: str, duration: float = 0.0
) -> CheckInput:
    """A check that failed in pawatch itself, not at the site (``internal``)."""
    return CheckInput(
        source_id=source.id,
        url=source.url,
        started_at=started,
        duration=duration,
        error_kind="internal",
        error=f"internal error: {message}",
    )


def parse_timed_out(spec: ParserSpec, timeout: float) -> ParseInput:
    """The parse of a page that took longer than ``timeout`` (its process was killed)."""
    return ParseInput(spec.version, None, error=f"parse took longer than {timeout:g} s")


def parse_unfinished(spec: ParserSpec, why: str) -> ParseInput:
    """The parse of a page whose process ended before it finished (killed, crashed)."""
    return ParseInput(spec.version, None, error=f"parser {spec.name} could not finish: {why}")


def _up_to_date(prev: Validators | None, spec: ParserSpec) -> bool:
    return prev is not None and prev.parsed and prev.parser_version == spec.version


def needs_previous_body(prev: Validators | None, spec: ParserSpec, result: FetchResult) -> bool:
    """Whether the check needs the source's latest stored body."""
    if prev is None:
        return False
    if result.not_modified:
        return not _up_to_date(prev, spec)  # parse the stored copy
    return spec.name == "page"  # diff the page text against the previous version's


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def needs_parse(
    spec: ParserSpec, prev: Validators | None, result: FetchResult, sha256: str
) -> bool:
    """Whether the fetched body must be parsed: anything but a 304 or the body whose facts
    are stored (parsed with this parser version). ``sha256``: the body's ("" for a 304)."""
    if result.not_modified:
        return prev is not None and not _up_to_date(prev, spec)
    return not (prev is not None and _up_to_date(prev, spec) and prev.sha256 == sha256)


def _page_text(source: Source, spec: ParserSpec, result: FetchResult, parsed: ParseInput) -> str:
    """The body's readable text: the ``page`` parser's own text when it read the whole page
    (no second parse), else one parse here."""
    whole = not (set(source.options) & {"select", "ignore", "strip"})
    if spec.name == "page" and whole and parsed.text is not None:
        return parsed.text
    return readable_text(result.body, result.content_type, source.encoding)


def analyse(
    source: Source,
    spec: ParserSpec,
    result: FetchResult,
    previous: Snapshot | None,
    same: bool,
) -> Analysed:
    """Parse a body that needs it (``needs_parse``): the fetched one, or on a 304 the stored
    copy (``previous``). A new body also gets its readable text and, for the ``page``
    parser, the diff of its text against the previous version's. CPU only: this is what
    runs where parsing may be killed (a worker, a fetch process)."""
    if result.not_modified:
        if previous is None:
            return None, None
        return parse_body(source, spec, previous.body, previous.content_type, previous.url), None
    parsed = parse_body(source, spec, result.body, result.content_type, result.final_url)
    if parsed.text is not None and previous is not None and not same:
        before = parse_body(source, spec, previous.body, previous.content_type, previous.url)
        if before.text is not None and before.text != parsed.text:
            parsed = replace(parsed, text_diff=text_diff(before.text, parsed.text))
    text = None if same else _page_text(source, spec, result, parsed)
    if parsed.text is not None:  # only needed here, for the diff: not sent back
        parsed = replace(parsed, text=None)
    return parsed, text


def analyse_job(
    source: Source, result: FetchResult, previous: Snapshot | None, same: bool
) -> Analysed:
    """``analyse`` as sent to a worker process: the parser is looked up there by name."""
    return analyse(source, get_parser(source.parser), result, previous, same)


def parse_job(source: Source, body: bytes, content_type: str | None, url: str) -> ParseInput:
    """``parse_body`` as sent to a worker process (the page text is left out)."""
    parsed = parse_body(source, get_parser(source.parser), body, content_type, url)
    return replace(parsed, text=None) if parsed.text is not None else parsed


async def fetch_check(
    fetcher: Fetcher,
    source: Source,
    spec: ParserSpec,
    prev: Validators | None,
    read_snapshot: Callable[[int], Awaitable[Snapshot]],
    parse_step: ParseStep,
) -> tuple[CheckInput, ParseInput | None]:
    """Check ``source`` once: what storage records (the check, the parse or None when the
    facts stored are still those of this body). Every failure of the fetch or of reading the
    stored copy is a failed check, never an exception; ``parse_step`` turns its own failures
    (time limit, dead worker) into parse errors."""
    validators = HttpValidators(prev.etag, prev.last_modified) if prev else None
    started = utcnow()
    try:
        result = await fetcher.fetch(source, validators)
        check = check_from_result(source, result)
        sha256 = "" if result.not_modified else digest(result.body)
        same = prev is not None and prev.sha256 == sha256
        if not result.not_modified:
            compressed = None if same else compress_body(result.body)
            check = replace(check, sha256=sha256, compressed=compressed)
        if not needs_parse(spec, prev, result, sha256):
            return check, None
        previous = None
        if prev is not None and needs_previous_body(prev, spec, result):
            previous = await read_snapshot(prev.snapshot_id)
        parse, text = await parse_step(check, source, spec, result, previous, same)
        return replace(check, text=text), parse
    except Exception as exc:  # every failure of one source is recorded, never raised
        return check_from_error(source, started, exc), None
