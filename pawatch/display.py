"""How text is shown to people: scraped text made safe for a terminal or an email, long values
shortened, URLs without their passwords, one line per change event. Neutral: imports nothing
from the project's layers.

Text from the web is data, never control: ``printable`` removes terminal escape sequences
(CSI, OSC 52 clipboard writes, OSC 8 links, DCS/APC/PM/SOS strings) whole, then every other
C0/C1 control but tab and newline, DEL, and the bidi embedding/override/isolate characters
(U+202A-U+202E, U+2066-U+2069) that make a line read differently from what it says. JSON
output stays exact (it escapes control characters itself).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# A whole ESC-led escape sequence, so that its payload (an OSC 52 clipboard text, an OSC 8
# link target) is not left behind as visible junk: string sequences (OSC/DCS/SOS/PM/APC) up to
# their terminator (BEL or ST) or, unterminated, to the end of the line; CSI sequences;
# two-character ESC sequences. 8-bit C1 controls are removed one by one (in mis-decoded text
# they are common and not the start of anything).
_ESCAPE_RE = re.compile(
    r"\x1b[\]PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)?"
    r"|\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[ -/]*[0-~]?"
)
# C0 controls but tab and newline, DEL, C1 controls; bidi embeddings, overrides, isolates.
_C0_C1 = [*range(0, 9), *range(11, 32), 127, *range(128, 160)]
_CONTROLS = dict.fromkeys([*_C0_C1, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
LONG_VALUE = 300  # characters: a scraped value longer than this is cut in terminal/email text


def printable(text: str) -> str:
    """``text`` without escape sequences, control characters other than tab and newline, or
    bidi overrides: a scraped page must not be able to drive the terminal it is shown on."""
    if text.isascii() and text.isprintable():
        return text
    return _ESCAPE_RE.sub("", text).translate(_CONTROLS)


def one_line(text: str, limit: int = LONG_VALUE) -> str:
    """``printable`` text on one line, at most ``limit`` characters (for a Subject, a list)."""
    return shorten(printable(text), limit)


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


# ------------------------------------------------------------------ secrets in URLs
_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/?#@:]*):[^\s/?#]*@")
REDACTED = "***"


def redact_url(url: str) -> str:
    """``url`` without its password: ``http://user:secret@host/`` -> ``http://user:***@host/``
    (a URL without one is returned unchanged)."""
    if "@" not in url:  # no userinfo, so no password (the usual case, without parsing)
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_secrets(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{name}:{REDACTED}@{host}"))


def redact_secrets(text: str) -> str:
    """Every ``scheme://user:password@`` in free text (an error message, a log line) with the
    password replaced by ``***``."""
    if "@" not in text:
        return text
    return _USERINFO_RE.sub(rf"\1:{REDACTED}@", text)


class SafeLogFilter(logging.Filter):
    """A handler filter: each record's message without URL passwords and without control
    characters (a log line quoting a page or a URL stays one harmless line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = printable(redact_secrets(message))
        if safe != message:
            record.msg, record.args = safe, None
        return True
