"""Reading the Assembly's delegation sentences, found by their text, in English and Russian.

    Delegation of the <parliament> to the CSTO PA consists of 7 deputies from the <chamber A>
        and 4 deputies from the <chamber B>.
    Делегация <парламента> в ПА ОДКБ представлена 6 депутатами <палаты> и 3 членами <палаты>.
    Plenipotentiary Representative of the <parliament>, <post>: <Name>
    Website of the <chamber>: <url>

``split_pieces`` cuts visible lines into such statements (a line may hold several, or carry a
link path glued to its start); ``assemble`` turns them into ``DelegationRecord``s. Shared by
the ``delegations`` and ``delegation-page`` parsers.

A piece recognised as a composition sentence (it starts "Delegation of/from" or "Делегация"
and has a composition verb, or names the Assembly and states a count of deputies/members)
is read in full or not at all: ``read_composition`` raises ``CompositionError`` naming the
sentence and what it could not read, never drops it (a dropped sentence would read as "the
delegation was removed").
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Any

from selectolax.lexbor import LexborNode

from pawatch.config.registry import Registry
from pawatch.domain import fold_text, slugify
from pawatch.scraper.parsers.base import ParseError
from pawatch.scraper.parsers.names import clean_name, looks_like_name
from pawatch.scraper.parsers.numbers import COUNT_PATTERN, parse_count
from pawatch.scraper.parsers.records import ChamberSeats, DelegationRecord, Website
from pawatch.scraper.parsers.text import Link, normalize_space, option_str, parse_html, select_first

COMPOSITION = "composition"
PLENIPOTENTIARY = "plenipotentiary"
WEBSITE = "website"
OTHER = "other"

_DELEGATION_WORD = r"Delegation\s+(?:of|from)\b|Делегация\s"
_PLENIPOTENTIARY_WORD = r"Plenipotentiary\s+[Rr]epresentative|Полномочн\w*\s+представител\w*"
_WEBSITE_WORD = (
    r"(?<!Official )(?:Official\s+)?[Ww]eb-?\s?site\s+of\b"
    r"|(?<!фициальный )(?<![\w-])(?:[Оо]фициальный\s+)?(?:[Сс]айт|[Вв]еб-сайт)\s"
)
# Where a statement starts inside a line (a zero-width split point).
_STATEMENT_START_RE = re.compile(
    rf"(?=(?:{_DELEGATION_WORD}|{_PLENIPOTENTIARY_WORD}|{_WEBSITE_WORD}))"
)
# Every match of _STATEMENT_START_RE starts with one of these texts (at the offset given:
# "[Сс]айт" has "айт" one character in), so only their occurrences need the regex.
_STATEMENT_ANCHORS = (("Delegation", 0), ("Делегация", 0), ("Plenipotentiary", 0),
                      ("Полномочн", 0), ("Official", 0), ("Web", 0), ("web", 0),
                      ("фициальный", 1), ("айт", 1), ("еб-сайт", 1))  # fmt: skip
# Cheap test that a line may hold a statement at all.
KEYWORDS = ("Delegation", "Делегация", "lenipotentiary", "олномочн", "ebsite", "eb-site",
            "Сайт", "сайт")  # fmt: skip

_VERB_RE = re.compile(
    r"\s(?:consists\s+of|is\s+represented\s+by|is\s+composed\s+of|comprises|includes|"
    r"состоит\s+из|представлена|включает(?:\s+в\s+себя)?)\s"
)
_DELEGATION_RE = re.compile(rf"(?:{_DELEGATION_WORD})\s*(?:the\s+)?")
_DELEGATION_START_RE = re.compile(rf"(?:{_DELEGATION_WORD})")
_ASSEMBLY_RE = re.compile(
    r"\s+(?:(?:to|in|at)\s+(?:the\s+)?(?:CSTO|PA\b|Parliamentary\s+Assembly)"
    r"|в\s+(?:ПА|Парламентск\w+\s+[Аа]ссамбле\w+)\b).*$"
)
_NOUNS = (
    r"deputies|deputy|members|member|senators|senator|MPs|parliamentarians|"
    r"депутат(?:ов|ами|а|ы)?|член(?:ов|ами|а|ы)?|сенатор(?:ов|ами|а|ы)?|"
    r"парламентари(?:ев|ями|я|и)"
)
_COUNT_RE = re.compile(
    rf"(?<![^\W_])(?P<n>{COUNT_PATTERN})\s+(?P<noun>{_NOUNS})(?![^\W_])", re.IGNORECASE
)
# _COUNT_RE tries its hundred number words at every word; this finds the same matches
# faster: any whole word (or 1-3 digits) before a noun, kept when the word is a count (a
# count word is a whole word and no noun is a count, so no match of _COUNT_RE is skipped).
_COUNT_CANDIDATE_RE = re.compile(
    rf"(?<![^\W_])(?P<n>\d{{1,3}}|[^\W\d_]++)\s+(?P<noun>{_NOUNS})(?![^\W_])", re.IGNORECASE
)
_COUNT_WORD_RE = re.compile(rf"(?:{COUNT_PATTERN})", re.IGNORECASE)
# A count written as a whole word (digits or a number word) anywhere: one that is not part
# of a read "<count> <noun>" is a count the sentence states but the parser cannot read.
_ANY_COUNT_RE = re.compile(rf"(?<![^\W_])(?:{COUNT_PATTERN})(?![^\W_])", re.IGNORECASE)
_NOUN_RE = re.compile(rf"(?<![^\W_])(?:{_NOUNS})(?![^\W_])", re.IGNORECASE)
_SHORT = 120  # characters of a sentence quoted in an error
_SENTENCE_END_RE = re.compile(r"\.(?:\s|$)")
_CHAMBER_LEAD_RE = re.compile(r"^\s*(?:(?:from|of|in|из|от)\s+)?(?:the\s+)?", re.IGNORECASE)
_CHAMBER_TAIL_RE = re.compile(r"(?:\s*(?:,|;|\band\b|\bи\b|\.))+\s*$", re.IGNORECASE)
_PLENIPOTENTIARY_RE = re.compile(rf"^(?:{_PLENIPOTENTIARY_WORD})(?P<head>.*):(?P<name>[^:]*)$")
_ROLE_SPLIT_RE = re.compile(r"\s*,\s+|\s+[-–—]\s+")
_OF_THE_RE = re.compile(r"^\s*(?:of\s+)?(?:the\s+)?", re.IGNORECASE)
_WEBSITE_RE = re.compile(rf"^(?P<label>(?:{_WEBSITE_WORD})[^:]*?)\s*:\s*(?P<rest>.*)$")
_WEBSITE_LABEL_RE = re.compile(
    r"^(?:Official\s+)?[Ww]eb-?\s?site\s+of\s+(?:the\s+)?|^(?:[Оо]фициальный\s+)?"
    r"(?:[Сс]айт|[Вв]еб-сайт)\s+"
)
_URL_TEXT_RE = re.compile(r"^(?:https?://|www\.)\S+$|^[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?:/\S*)?$")


@dataclass(frozen=True)
class Piece:
    """One statement (or other line) of the visible text, in page order."""

    kind: str  # COMPOSITION, PLENIPOTENTIARY, WEBSITE or OTHER
    text: str


class CompositionError(ParseError):
    """A composition sentence was recognised but could not be read in full."""

    def __init__(self, text: str, problem: str, delegation_id: str | None = None) -> None:
        super().__init__(f"cannot read the composition sentence {shorten(text)!r}: {problem}")
        self.delegation_id = delegation_id  # the parliament it names, when that was read


def shorten(text: str, limit: int = _SHORT) -> str:
    """``text`` on one line, cut to ``limit`` characters (with "…" when cut)."""
    text = normalize_space(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def looks_like_composition(text: str) -> bool:
    """True when ``text`` is a composition sentence, readable or not: it starts with
    "Delegation of/from" or "Делегация" and has a composition verb, or names the Assembly
    ("to the CSTO PA", "в ПА ОДКБ") and states a count and a seat noun in its first sentence
    ("... to the CSTO PA is made up of 7 deputies")."""
    if _DELEGATION_START_RE.match(text) is None:
        return False
    if _VERB_RE.search(text):
        return True
    first = _SENTENCE_END_RE.split(text, maxsplit=1)[0]
    return bool(
        _ASSEMBLY_RE.search(first) and _NOUN_RE.search(first) and _ANY_COUNT_RE.search(first)
    )


def _kind(text: str) -> str:
    if looks_like_composition(text):
        return COMPOSITION
    if _PLENIPOTENTIARY_RE.match(text):
        return PLENIPOTENTIARY
    if _WEBSITE_RE.match(text):
        return WEBSITE
    return OTHER


def split_pieces(lines: list[str]) -> list[Piece]:
    """Cut lines into statements at their keywords and classify each piece."""
    pieces: list[Piece] = []
    with_keyword = _lines_with_keyword(lines)
    for index, line in enumerate(lines):
        if index not in with_keyword:
            pieces.append(Piece(OTHER, line))
            continue
        for part in _split_statements(line):
            part = part.strip()
            if part:
                pieces.append(Piece(_kind(part), part))
    return pieces


def _lines_with_keyword(lines: list[str]) -> set[int]:
    """The indexes of the lines holding one of KEYWORDS: one scan of all the text per
    keyword (most are absent), not one per line."""
    joined = "\n".join(lines)
    starts = list(accumulate((len(line) + 1 for line in lines), initial=0))
    found: set[int] = set()
    for word in KEYWORDS:
        at = joined.find(word)
        while at >= 0:
            index = bisect_right(starts, at) - 1
            found.add(index)
            at = joined.find(word, starts[index + 1])  # on from the next line
    return found


def _split_statements(line: str) -> list[str]:
    """``_STATEMENT_START_RE.split(line)``, trying the regex only where an anchor is."""
    cuts: set[int] = set()
    for anchor, offset in _STATEMENT_ANCHORS:
        at = line.find(anchor)
        while at >= 0:
            start = at - offset
            if start >= 0 and _STATEMENT_START_RE.match(line, start):
                cuts.add(start)
            at = line.find(anchor, at + 1)
    if not cuts:
        return [line]
    bounds = [0, *sorted(cuts), len(line)]
    return [line[a:b] for a, b in pairwise(bounds)]


def has_statement_keyword(text: str) -> bool:
    """True when ``text`` may contain a delegation statement (a fast pre-check)."""
    return any(word in text for word in KEYWORDS)


def _chamber_slug(chamber: str, parliament: str) -> str:
    folded, folded_parliament = fold_text(chamber), fold_text(parliament)
    if folded_parliament and folded.endswith(" " + folded_parliament):
        folded = folded[: -len(folded_parliament)].strip().removesuffix(" of").strip()
    return slugify(folded)


def read_composition(text: str, registry: Registry, warnings: list[str]) -> DelegationRecord:
    """A composition sentence -> a record with its seats (no representative, no websites).

    Raises ``CompositionError`` when the sentence cannot be read in full: no composition
    verb, no parliament, no count of seats, or a count it states but that is not read.
    """
    verb = _VERB_RE.search(text)
    if verb is None:
        raise CompositionError(
            text, "no composition verb (consists of, is represented by, состоит из, "
            "представлена, ...)"
        )  # fmt: skip
    leads = list(_DELEGATION_RE.finditer(text, 0, verb.start()))
    if not leads:
        raise CompositionError(text, "no 'Delegation of'/'Делегация' before its verb")
    lead = leads[-1]  # the last "Delegation of" before the verb
    parliament = _ASSEMBLY_RE.sub("", text[lead.end() : verb.start()]).strip(" ,")
    if not parliament:
        raise CompositionError(text, "it names no parliament")
    named = registry.match_delegation(parliament)
    rest = _SENTENCE_END_RE.split(text[verb.end() :], maxsplit=1)[0]
    counts = [
        match
        for match in _COUNT_CANDIDATE_RE.finditer(rest)
        if _COUNT_WORD_RE.fullmatch(match.group("n"))
    ]
    if not counts:
        raise CompositionError(
            text, f"no seat count (a number followed by deputies, members, депутатов, ...) in "
            f"{shorten(rest, 80)!r}", named
        )  # fmt: skip
    for stray in _ANY_COUNT_RE.finditer(rest):
        if not any(m.start("n") <= stray.start() < m.end("n") for m in counts):
            at = shorten(rest[stray.start() :], 40)
            raise CompositionError(
                text, f"the count {stray.group()!r} is not read as seats (at {at!r})", named
            )
    delegation_id = named or registry.resolve_delegation(parliament)
    chambers: list[ChamberSeats] = []
    for index, match in enumerate(counts):
        end = counts[index + 1].start() if index + 1 < len(counts) else len(rest)
        chamber = _CHAMBER_TAIL_RE.sub("", _CHAMBER_LEAD_RE.sub("", rest[match.end() : end]))
        chamber = chamber.strip()
        seats = parse_count(match.group("n"))
        if seats is None:  # the regex only matches counts parse_count reads
            continue
        chamber_id = _chamber_id(chamber, index, delegation_id, parliament, registry, warnings)
        if any(c.chamber_id == chamber_id for c in chambers):
            warnings.append(f"{delegation_id}: chamber {chamber_id!r} counted twice in {text!r}")
            continue
        chambers.append(ChamberSeats(chamber_id, chamber or None, seats, match.group("noun")))
    return DelegationRecord(delegation_id, parliament, chambers, normalize_space(text))


def _chamber_id(
    chamber: str,
    index: int,
    delegation_id: str,
    parliament: str,
    registry: Registry,
    warnings: list[str],
) -> str:
    if not chamber:
        single = registry.single_chamber(delegation_id)
        if index == 0:
            return single or "main"
        warnings.append(f"{delegation_id}: count {index + 1} names no chamber")
        return f"main-{index + 1}"
    found = registry.match_chamber(delegation_id, chamber)
    if found is not None:
        return found
    if registry.has(delegation_id):
        warnings.append(f"{delegation_id}: chamber {chamber!r} is not in the registry")
    return _chamber_slug(chamber, parliament)


@dataclass(frozen=True)
class Representative:
    parliament: str  # as written, "" when the line names none
    role: str | None
    name: str  # as written, "" when the line has none


def read_plenipotentiary(text: str, next_line: str | None = None) -> Representative | None:
    """A plenipotentiary line -> who, for which parliament, in which post. A name missing
    after the colon is taken from ``next_line`` when that looks like a name."""
    match = _PLENIPOTENTIARY_RE.match(text)
    if match is None:
        return None
    head = _OF_THE_RE.sub("", match.group("head")).strip()
    parts = _ROLE_SPLIT_RE.split(head, maxsplit=1)
    parliament = parts[0].strip()
    role = parts[1].strip(" ,") if len(parts) > 1 else None
    name = clean_name(match.group("name"))
    if not name and next_line is not None and looks_like_name(clean_name(next_line)):
        name = clean_name(next_line)
    return Representative(parliament, role or None, name)


@dataclass(frozen=True)
class WebsiteLine:
    label: str  # the text before the colon
    chamber: str  # the chamber the label names, as written
    url: str | None  # None: a label without a URL (no website)


def read_website(text: str, links: list[Link]) -> WebsiteLine | None:
    """A website line -> its label, chamber and URL (the link's href when there is one)."""
    match = _WEBSITE_RE.match(text)
    if match is None:
        return None
    label = match.group("label").strip()
    rest = match.group("rest").strip().rstrip(";,")
    chamber = _WEBSITE_LABEL_RE.sub("", label).strip()
    url: str | None = None
    by_text = {link.text: link.href for link in links if link.text}
    if rest and rest in by_text:
        url = by_text[rest]
    elif rest and _URL_TEXT_RE.match(rest):
        url = rest
    elif not rest and label in by_text:
        url = by_text[label]
    if url is not None and (not url.strip() or url.strip().startswith(("#", "javascript:"))):
        url = None
    return WebsiteLine(label, chamber, url)


def assemble(
    pieces: list[Piece], links: list[Link], registry: Registry, warnings: list[str]
) -> list[DelegationRecord]:
    """Records from the statements in ``pieces``: a composition sentence opens a delegation;
    representative and website lines attach to the delegation they name, else to the one
    whose sentence precedes them. A composition sentence that cannot be read in full raises
    ``CompositionError``."""
    records: dict[str, DelegationRecord] = {}
    owners: list[DelegationRecord | None] = []  # the delegation whose sentence precedes
    current: DelegationRecord | None = None
    for piece in pieces:
        if piece.kind == COMPOSITION:
            record = read_composition(piece.text, registry, warnings)
            known = records.get(record.delegation_id)
            if known is None:
                records[record.delegation_id] = record
                known = record
            elif known.chambers != record.chambers:
                warnings.append(
                    f"{record.delegation_id}: a second, different composition sentence "
                    f"{piece.text[:160]!r}; kept the first"
                )
            current = known
        owners.append(current)
    for index, piece in enumerate(pieces):
        if piece.kind == PLENIPOTENTIARY:
            following = pieces[index + 1].text if index + 1 < len(pieces) else None
            _attach_representative(
                piece.text, following, records, owners[index], registry, warnings
            )
        elif piece.kind == WEBSITE:
            _attach_website(piece.text, links, records, owners[index], registry, warnings)
    return list(records.values())


def _attach_representative(
    text: str,
    following: str | None,
    records: dict[str, DelegationRecord],
    current: DelegationRecord | None,
    registry: Registry,
    warnings: list[str],
) -> None:
    rep = read_plenipotentiary(text, following)
    if rep is None:
        return
    target = current
    named = registry.match_delegation(rep.parliament) if rep.parliament else None
    if named is not None:
        target = records.get(named)
    elif rep.parliament:
        target = records.get(registry.resolve_delegation(rep.parliament), current)
    if target is None:
        warnings.append(f"representative line outside any delegation: {text[:160]!r}")
        return
    if not rep.name:
        warnings.append(f"{target.delegation_id}: representative line without a name: {text!r}")
        return
    if target.plenipotentiary and target.plenipotentiary != rep.name:
        warnings.append(
            f"{target.delegation_id}: a second representative {rep.name!r}; kept "
            f"{target.plenipotentiary!r}"
        )
        return
    target.plenipotentiary = rep.name
    target.plenipotentiary_role = rep.role


def _attach_website(
    text: str,
    links: list[Link],
    records: dict[str, DelegationRecord],
    current: DelegationRecord | None,
    registry: Registry,
    warnings: list[str],
) -> None:
    line = read_website(text, links)
    if line is None or line.url is None:
        return  # a label with no URL: no website
    target = current
    named = registry.match_delegation(line.chamber)
    if named is not None and named in records:
        target = records[named]
    if target is None:
        warnings.append(f"website line outside any delegation: {text[:160]!r}")
        return
    chamber_id = registry.match_chamber(target.delegation_id, line.chamber)
    if any(site.url == line.url for site in target.websites):
        return
    target.websites.append(Website(line.url, line.label, chamber_id))


def read_scope(html: str, options: Mapping[str, Any], parser: str) -> LexborNode | None:
    """The part of the page a delegation parser reads: the ``select`` option's first match
    (a ParseError naming the selector when it matches nothing), else the body."""
    tree = parse_html(html)
    selector = option_str(options, "select")
    if selector is None or tree.root is None:
        return tree.body
    scope = select_first(tree.root, selector, "select")
    if scope is None:
        raise ParseError(f"{parser}: select {selector!r} matched nothing")
    return scope
