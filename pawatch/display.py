"""How text is shown to people: scraped text made safe for a terminal, long values shortened,
one line per change event. Neutral: imports nothing from the project's layers."""

from __future__ import annotations

from typing import Any

# Control characters (terminal escape sequences among them) in scraped text are not printed.
_CONTROLS = dict.fromkeys([*range(0, 9), *range(11, 32), 127, *range(128, 160)])


def printable(text: str) -> str:
    """``text`` without control characters other than tab and newline: a scraped page must
    not be able to drive the terminal it is shown on."""
    return text.translate(_CONTROLS)


def event_line(e: dict[str, Any]) -> str:
    change = ""
    if e["old"] is not None or e["new"] is not None:
        old = "-" if e["old"] is None else shorten(e["old"])
        new = "-" if e["new"] is None else shorten(e["new"])
        change = f" {old} -> {new}"
    where = f"{e['delegation']} " if e["delegation"] else ""
    attr = f"{e['attribute']}" if e["attribute"] else ""
    snaps = ""
    if e["before_snapshot"] or e["after_snapshot"]:
        snaps = f" [snapshots {e['before_snapshot'] or '-'} -> {e['after_snapshot'] or '-'}]"
    return (
        f"#{e['id']} {e['detected_at']} {e['kind']}: {where}{attr}{change} "
        f"({e['source_id']}){snaps}"
    )


def shorten(text: str, limit: int = 80) -> str:
    text = " ".join(str(text)[: limit * 4].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
