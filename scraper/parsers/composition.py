"""Reading the Assembly's delegation sentences, found by their text, in English and Russian.

    Delegation of the <parliament> to the CSTO PA consists of 7 deputies from the <chamber A>
        and 4 deputies from the <chamber B>.
    Делегация <парламента> в ПА ОДКБ представлена 6 депутатами <палаты> и 3 членами <палаты>.
    В составе делегации <парламента> в ПА ОДКБ 10 депутатов <палаты> и 12 сенаторов <страны>.
    Plenipotentiary Representative of the <parliament>, <post>: <Name>
    Website of the <chamber>: <url>

``split_pieces`` cuts visible lines into such statements (a line may hold several, or carry a
link path glued to its start); ``assemble`` turns them into ``DelegationRecord``s. Shared by
the ``delegations`` and ``delegation-page`` parsers.

A piece recognised as a composition sentence (it starts "Delegation of/from", "Делегация"
or "В составе делегации" and has a composition verb, or names the Assembly and states a count
of deputies/members) is read in full or not at all: ``read_composition`` raises
``CompositionError`` naming the sentence and what it could not read, never drops it (a
dropped sentence would read as "the delegation was removed"). The verb is not a closed list:
after "to the CSTO PA"/"в ПА ОДКБ", any short verb phrase ("is made up of", "включает",
"насчитывает") leads to the counts.

Chambers are the registry's, by identity: a count's chamber is the one the sentence names
("of the State Duma"), else the one whose members' title it uses ("12 senators of the
Russian Federation" -> ``federation-council``), else the delegation's only chamber, else the
one left when the sentence names the delegation's other chambers. A chamber the registry
cannot resolve is never invented: the record's ``seats_problem`` quotes the phrase and the
record states no seats (the parsers report it as ``ParseResult.unreadable``).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from itertools import accumulate, pairwise
from typing import Any

from selectolax.lexbor import LexborNode

from pawatch.config.registry import TITLE_ENDINGS, Registry, load_registry
from pawatch.scraper.parsers.base import ParseError
from pawatch.scraper.parsers.names import clean_name, looks_like_name
from pawatch.scraper.parsers.numbers import COUNT_PATTERN, parse_count
from pawatch.scraper.parsers.records import ChamberSeats, DelegationRecord, Website, website_key
from pawatch.scraper.parsers.text import Link, normalize_space, option_str, parse_html, select_first

COMPOSITION = "composition"
PLENIPOTENTIARY = "plenipotentiary"
WEBSITE = "website"
OTHER = "other"

_DELEGATION_WORD = r"Delegation\s+(?:of|from)\b|Делегация\s|В\s+составе\s+делегации\s"
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
_STATEMENT_ANCHORS = (("Delegation", 0), ("Делегация", 0), ("составе делегации", 2),
                      ("Plenipotentiary", 0),
                      ("Полномочн", 0), ("Official", 0), ("Web", 0), ("web", 0),
                      ("фициальный", 1), ("айт", 1), ("еб-сайт", 1))  # fmt: skip
# Cheap test that a line may hold a statement at all.
KEYWORDS = ("Delegation", "Делегация", "составе делегации", "lenipotentiary", "олномочн",
            "ebsite", "eb-site", "Сайт", "сайт")  # fmt: skip

# The usual composition verbs: one of them makes a "Delegation of ..." line a composition
# sentence and ends its parliament's name. After "to the CSTO PA" any short verb phrase will
# do (see _LINK_WORDS_MAX).
_VERB_RE = re.compile(
    r"\s(?:consists\s+of|is\s+represented\s+by|is\s+(?:composed|made\s+up|formed)\s+of|"
    r"comprises|includes|состоит\s+из|представлена|сформирована\s+из|насчитывает|"
    r"включает(?:\s+в\s+себя)?)\s"
)
# The end of "to the CSTO PA" / "в ПА ОДКБ": where the counts' verb phrase starts.
_ASSEMBLY_PHRASE_RE = re.compile(
    r"\s+(?:(?:to|in|at)\s+(?:the\s+)?(?:CSTO\s+(?:PA|Parliamentary\s+Assembly)|PA\s+CSTO|"
    r"Parliamentary\s+Assembly(?:\s+of\s+(?:the\s+)?CSTO)?|CSTO|PA)"
    r"|в\s+(?:ПА(?:\s+ОДКБ)?|Парламентск\w+\s+[Аа]ссамбле\w+(?:\s+ОДКБ)?))(?![^\W_])"
)
# What may stand between "to the CSTO PA" and the first count: nothing, a dash or colon, or
# up to four words ending as a composition verb phrase does: "of"/"by"/"из"/"себя", an
# English verb in -s ("comprises", "numbers"), a Russian present-tense verb ("насчитывает",
# "входят") or short participle ("представлена"). "met with 5 members" is no composition.
_LINK_RE = re.compile(
    r"[\s,:;–—-]*(?:(?:[^\W\d_]+\s+){0,3}(?:of|by|из|себя|[^\W\d_]+(?:s|ет|ит|ют|ят|на|ны)))?"
    r"[\s,:;–—-]*",
    re.IGNORECASE,
)
_DELEGATION_RE = re.compile(rf"(?:{_DELEGATION_WORD})\s*(?:the\s+)?")
_DELEGATION_START_RE = re.compile(rf"(?:{_DELEGATION_WORD})")
_ASSEMBLY_RE = re.compile(
    r"\s+(?:(?:to|in|at)\s+(?:the\s+)?(?:CSTO|PA\b|Parliamentary\s+Assembly)"
    r"|в\s+(?:ПА|Парламентск\w+\s+[Аа]ссамбле\w+)\b).*$"
)
# The seat nouns: these, and the member titles the registry declares for its chambers.
_NOUNS = (
    r"deputies|deputy|members|member|senators|senator|MPs|parliamentarians|"
    r"депутат(?:ов|ами|а|ы)?|член(?:ов|ами|а|ы)?|сенатор(?:ов|ами|а|ы)?|"
    r"парламентари(?:ев|ями|я|и)"
)
_COUNT_WORD_RE = re.compile(rf"(?:{COUNT_PATTERN})", re.IGNORECASE)
# A count written as a whole word (digits or a number word) anywhere: one that is not part
# of a read "<count> <noun>" is a count the sentence states but the parser cannot read.
_ANY_COUNT_RE = re.compile(rf"(?<![^\W_])(?:{COUNT_PATTERN})(?![^\W_])", re.IGNORECASE)


@dataclass(frozen=True)
class _SeatPatterns:
    # Any whole word (or 1-3 digits) before a seat noun, kept when the word is a count (a
    # count word is a whole word and no noun is a count): faster than trying the hundred
    # number words of COUNT_PATTERN at every word.
    count_candidate: re.Pattern[str]
    noun: re.Pattern[str]


@cache
def _seat_patterns(titles: tuple[str, ...]) -> _SeatPatterns:
    """The seat-noun patterns for a registry's member titles (with their endings)."""
    endings = "|".join(re.escape(e) for e in sorted(TITLE_ENDINGS, key=len, reverse=True) if e)
    nouns = _NOUNS + "".join(f"|{re.escape(title)}(?:{endings})?" for title in titles)
    return _SeatPatterns(
        re.compile(
            rf"(?<![^\W_])(?P<n>\d{{1,3}}|[^\W\d_]++)\s+(?P<noun>{nouns})(?![^\W_])",
            re.IGNORECASE,
        ),
        re.compile(rf"(?<![^\W_])(?:{nouns})(?![^\W_])", re.IGNORECASE),
    )


def _shipped_patterns() -> _SeatPatterns:
    return _seat_patterns(load_registry().member_titles)


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
    "Delegation of/from", "Делегация" or "В составе делегации" and has a composition verb,
    or names the Assembly ("to the CSTO PA", "в ПА ОДКБ") and states a count and a seat noun
    in its first sentence ("... to the CSTO PA is made up of 7 deputies")."""
    if _DELEGATION_START_RE.match(text) is None:
        return False
    if _VERB_RE.search(text):
        return True
    first = _SENTENCE_END_RE.split(text, maxsplit=1)[0]
    return bool(
        _ASSEMBLY_RE.search(first)
        and _ANY_COUNT_RE.search(first)
        and _shipped_patterns().noun.search(first)
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


def _split_head(text: str) -> tuple[int, int, int]:
    """Where the parliament's name ends and the counts' phrase starts: at a composition verb,
    else after "to the CSTO PA"/"в ПА ОДКБ" (then the words up to the counts are the verb).
    Returns (verb start, verb end, end of the text searched for "Delegation of");
    CompositionError when neither is found."""
    first = _SENTENCE_END_RE.split(text, maxsplit=1)[0]
    verb = _VERB_RE.search(first)
    if verb is not None:
        return verb.start(), verb.end(), verb.start()
    assembly = _ASSEMBLY_PHRASE_RE.search(first)
    if assembly is not None:
        return assembly.start(), assembly.end(), assembly.start()
    raise CompositionError(
        text, "no composition verb (consists of, состоит из, ...) and no 'to the CSTO PA'"
    )


def read_composition(text: str, registry: Registry, warnings: list[str]) -> DelegationRecord:
    """A composition sentence -> a record with its seats (no representative, no websites).

    Raises ``CompositionError`` when the sentence cannot be read in full: no parliament, no
    count of seats, a count it states but that is not read, or too many words between the
    Assembly and the counts. A chamber the registry cannot resolve is no error: the record's
    ``seats_problem`` says which phrase, and the record states no seats.
    """
    verb_start, verb_end, head_end = _split_head(text)
    leads = list(_DELEGATION_RE.finditer(text, 0, head_end))
    if not leads:
        raise CompositionError(text, "no 'Delegation of'/'Делегация' before its verb")
    lead = leads[-1]  # the last "Delegation of" before the verb
    parliament = _ASSEMBLY_RE.sub("", text[lead.end() : verb_start]).strip(" ,")
    if not parliament:
        raise CompositionError(text, "it names no parliament")
    named = registry.match_delegation(parliament)
    rest = _SENTENCE_END_RE.split(text[verb_end:], maxsplit=1)[0]
    patterns = _seat_patterns(registry.member_titles)
    counts = [
        match
        for match in patterns.count_candidate.finditer(rest)
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
    link = rest[: counts[0].start()]
    if not _LINK_RE.fullmatch(link):
        raise CompositionError(
            text, f"{shorten(link, 60)!r} before the first count is not a composition verb",
            named
        )  # fmt: skip
    delegation_id = named or registry.resolve_delegation(parliament)
    phrases: list[tuple[str, str, int, str]] = []  # (chamber as written, noun, seats, phrase)
    for index, match in enumerate(counts):
        end = counts[index + 1].start() if index + 1 < len(counts) else len(rest)
        chamber = _CHAMBER_TAIL_RE.sub("", _CHAMBER_LEAD_RE.sub("", rest[match.end() : end]))
        seats = parse_count(match.group("n"))
        if seats is None:  # the regex only matches counts parse_count reads
            continue
        phrase = _CHAMBER_TAIL_RE.sub("", rest[match.start() : end]).strip()
        phrases.append((chamber.strip(), match.group("noun"), seats, phrase))
    ids = resolve_chambers(delegation_id, [(c, noun) for c, noun, _, _ in phrases], registry)
    chambers: list[ChamberSeats] = []
    unresolved: list[str] = []
    for chamber_id, (chamber, noun, seats, phrase) in zip(ids, phrases, strict=True):
        if chamber_id is None:
            unresolved.append(phrase)
        elif any(c.chamber_id == chamber_id for c in chambers):
            warnings.append(f"{delegation_id}: chamber {chamber_id!r} counted twice in {text!r}")
            continue
        chambers.append(ChamberSeats(chamber_id, chamber or None, seats, noun))
    record = DelegationRecord(delegation_id, parliament, chambers, normalize_space(text))
    if unresolved:
        why = (
            f"no chamber of {delegation_id} in the registry matches"
            if registry.has(delegation_id)
            else f"the registry has no parliament {shorten(parliament, 60)!r}"
        )
        quoted = ", ".join(repr(shorten(p, 80)) for p in unresolved)
        record.seats_problem = (
            f"{delegation_id}: cannot tell the chamber of {quoted} in {shorten(text)!r}: {why}"
        )
    return record


def resolve_chambers(
    delegation_id: str, phrases: list[tuple[str, str]], registry: Registry
) -> list[str | None]:
    """The registry chamber id of each (chamber as written, seat noun) of one sentence, None
    where the registry cannot tell: the chamber named, else the chamber whose members' title
    the noun is, else the delegation's only chamber, else (for the one count left) the one
    chamber the sentence's other counts do not name. A text that names something other than
    the delegation's state or parliament and matches no chamber is never guessed."""
    ids: list[str | None] = []
    pending: list[int] = []
    for index, (chamber, noun) in enumerate(phrases):
        found = registry.match_chamber(delegation_id, chamber) if chamber else None
        if found is None and registry.names_only_delegation(delegation_id, chamber):
            found = registry.match_member_title(delegation_id, noun) or registry.single_chamber(
                delegation_id
            )
            if found is None:
                pending.append(index)
        ids.append(found)
    if len(pending) == 1:
        left = [c for c in registry.chamber_ids(delegation_id) if c not in ids]
        if len(left) == 1 and len(ids) > 1:
            ids[pending[0]] = left[0]
    return ids


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
    if any(website_key(site.url) == website_key(line.url) for site in target.websites):
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
