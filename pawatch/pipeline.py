"""One run: config -> fetch -> snapshot (-> parse -> facts/changes in later stages).

``check_sources`` fetches the given sources concurrently through one ``Fetcher`` and records
each check in its own transaction as soon as it completes, so a failing source never holds
back or spoils the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from config import Settings, Source
from scraper.errors import FetchError
from scraper.fetch import Fetcher, FetchResult
from scraper.fetch import Validators as HttpValidators
from storage import CheckInput, CheckOutcome, SourceRow, Store, format_time

OUTCOMES = ("new", "changed", "unchanged", "not_modified", "failed")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunSummary:
    started_at: datetime
    finished_at: datetime | None = None
    outcomes: list[CheckOutcome] = field(default_factory=list)

    def ids(self, outcome: str) -> list[str]:
        return sorted(o.source_id for o in self.outcomes if o.outcome == outcome)

    @property
    def failed(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if o.outcome == "failed"]

    @property
    def exit_code(self) -> int:
        """0 when every check succeeded, 1 when some source failed."""
        return 1 if self.failed else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "started_at": format_time(self.started_at),
            "finished_at": format_time(self.finished_at or self.started_at),
            "checked": len(self.outcomes),
            "counts": {name: len(self.ids(name)) for name in OUTCOMES},
            "sources": {name: self.ids(name) for name in OUTCOMES},
            "events": sum(len(o.event_ids) for o in self.outcomes),
            "errors": {o.source_id: o.error for o in self.failed},
        }


def _check_from_result(source: Source, result: FetchResult) -> CheckInput:
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


def _check_from_error(source: Source, started: datetime, error: Exception) -> CheckInput:
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
    return CheckInput(
        source_id=source.id,
        url=source.url,
        started_at=started,
        duration=duration,
        error_kind="internal",
        error=f"internal error: {type(error).__name__}: {error}",
    )


async def check_sources(
    settings: Settings,
    sources: Sequence[Source],
    store: Store,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    on_outcome: Callable[[CheckOutcome], None] | None = None,
) -> RunSummary:
    """Check ``sources`` once; return what happened to each."""
    summary = RunSummary(started_at=utcnow())
    store.sync_sources(
        [SourceRow(s.id, s.url, s.parser, s.delegation) for s in sources], summary.started_at
    )
    previous = store.latest_validators()

    async with Fetcher(settings.http, sources, transport=transport) as fetcher:

        async def check(source: Source) -> None:
            prev = previous.get(source.id)
            validators = HttpValidators(prev.etag, prev.last_modified) if prev else None
            started = utcnow()
            try:
                result = await fetcher.fetch(source, validators)
                check_input = _check_from_result(source, result)
            except Exception as exc:  # every failure of one source is recorded, never raised
                check_input = _check_from_error(source, started, exc)
            outcome = store.record_check(check_input)
            summary.outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

        await asyncio.gather(*(check(s) for s in sources))
    summary.finished_at = utcnow()
    return summary


def run_once(
    settings: Settings,
    sources: Sequence[Source],
    store: Store,
    *,
    on_outcome: Callable[[CheckOutcome], None] | None = None,
) -> RunSummary:
    return asyncio.run(check_sources(settings, sources, store, on_outcome=on_outcome))
