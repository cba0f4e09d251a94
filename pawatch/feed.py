"""An Atom 1.0 feed (RFC 4287) of the delegation-level changes, for feed readers and web
servers: one entry per change (however many sources saw it), its id stable, its ``updated``
moved when another source confirms it. Written to stdout by ``pawatch feed`` or atomically to
a file (``pawatch feed --out PATH``; ``[feed] path`` after every run and daemon cycle).

The same database gives the same bytes: nothing in the feed depends on when it is written.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from pawatch.config.model import Settings
from pawatch.domain import CHANGE_KINDS
from pawatch.reports import (
    FINDING_KINDS,
    ChangeItem,
    clean,
    delegation_name,
    http_only,
    items_from_changes,
    plural,
    render_item_html,
    with_evidence,
)
from pawatch.storage import Store

log = logging.getLogger("pawatch.feed")

ATOM = "http://www.w3.org/2005/Atom"
EPOCH = "1970-01-01T00:00:00Z"  # the feed's `updated` while it has no entry
# News is per source, not a change; disagreements are findings about the sources (reports'
# monitoring section), not changes of a delegation.
FEED_KINDS = tuple(k for k in CHANGE_KINDS if k != "news" and k not in FINDING_KINDS)
# Characters XML 1.0 cannot carry at all (C0 controls but tab/newline/CR, surrogates, FFFE/F).
_NOT_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def feed_items(store: Store, max_entries: int) -> list[ChangeItem]:
    """The newest ``max_entries`` changes, newest first, with their quoted evidence."""
    items = items_from_changes(store.delegation_changes(kinds=FEED_KINDS, latest=max_entries))
    items.sort(key=lambda i: (i.last_detected, i.event_ids[0]), reverse=True)
    return with_evidence(items[:max_entries], store)


def feed_id(settings: Settings) -> str:
    """``[feed] id``, else a UUID derived from ``[feed] link`` or the database's path."""
    if settings.feed.id:
        return settings.feed.id
    basis = settings.feed.link or f"pawatch:{Path(settings.storage.path).resolve()}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, basis)}"


def entry_id(feed: str, item: ChangeItem) -> str:
    """Stable: the feed's id and the change's first event (a later source keeps the id)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{feed}/change/{min(item.event_ids)}')}"


def _text(value: str) -> str:
    return _NOT_XML_RE.sub("", value)


def render_feed(items: list[ChangeItem], settings: Settings) -> str:
    """The Atom document for these changes (newest first)."""
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = _text(text)
        return element

    fid = feed_id(settings)
    root = ET.Element(f"{{{ATOM}}}feed")
    sub(root, "id", fid)
    sub(root, "title", clean(settings.feed.title, 200))
    sub(root, "updated", max((i.last_detected for i in items), default=EPOCH))
    author = sub(root, "author")
    sub(author, "name", "pawatch")
    sub(root, "generator", "pawatch")
    if settings.feed.link:
        sub(root, "link", rel="self", href=settings.feed.link)
    base_url = settings.report.base_url
    for item in items:
        entry = sub(root, "entry")
        sub(entry, "id", entry_id(fid, item))
        where = delegation_name(item.delegation) if item.delegation else ""
        title = f"{where}: {item.headline}" if where else item.headline
        sub(entry, "title", clean(title, 300))
        sub(entry, "updated", item.last_detected)
        sub(entry, "published", item.first_detected)
        for sighting in item.sightings:
            href = http_only(sighting.url)
            if href:
                sub(entry, "link", rel="related", href=href)
        sub(entry, "category", term=item.kind)
        n = len(item.sightings)
        sub(entry, "summary", f"{clean(title, 300)} (seen on {plural(n, 'source')})")
        sub(entry, "content", render_item_html(item, base_url), type="html")
    ET.indent(root, space=" ")
    body = ET.tostring(root, encoding="unicode", xml_declaration=False)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def build_feed(settings: Settings, store: Store) -> str:
    return render_feed(feed_items(store, settings.feed.max_entries), settings)


def write_atomically(path: str | Path, text: str) -> bool:
    """Write ``text`` to ``path`` through a temporary file and a rename, so a reader sees
    the old file or the new one, never half of one. False (nothing written) when the file
    already holds exactly these bytes."""
    target = Path(path)
    data = text.encode("utf-8")
    try:
        if target.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def update_feed_file(settings: Settings, store: Store) -> bool | None:
    """Rewrite ``[feed] path`` when set (None when not); a failure is logged, never raised:
    the feed is a by-product of the checks, which are already recorded."""
    path = settings.feed.path
    if not path:
        return None
    try:
        changed = write_atomically(path, build_feed(settings, store))
    except OSError as exc:
        log.warning("cannot write the feed %s: %s", path, exc.strerror or exc)
        return False
    if changed:
        log.info("feed written to %s", path)
    return changed
