"""Parser ``delegation-page``: the Assembly's page of one national delegation.

The page states the composition sentence, the members (one comma-separated paragraph or one
name per line/item), the plenipotentiary line, website lines and the head of the delegation.
The page may also carry the sidebar block with every delegation's sentence: the sentence
read is the one for the source's ``delegation`` (when configured) followed by member names.

A composition sentence that cannot be read in full is a ParseError, unless the source's
``delegation`` is configured and the sentence names another known parliament (a sidebar
sentence of another delegation: a warning).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from selectolax.lexbor import LexborNode

from pawatch.config.model import OptionSpec
from pawatch.config.registry import load_registry
from pawatch.scraper.parsers.base import ParseError, ParseResult, ParserSpec
from pawatch.scraper.parsers.composition import (
    COMPOSITION,
    OTHER,
    CompositionError,
    Piece,
    assemble,
    has_statement_keyword,
    read_composition,
    read_scope,
    split_pieces,
)
from pawatch.scraper.parsers.delegations import page_links, unreadable_seats
from pawatch.scraper.parsers.names import clean_name, looks_like_name, name_key
from pawatch.scraper.parsers.records import DelegationRecord
from pawatch.scraper.parsers.text import (
    blocks_containing,
    inline_text,
    normalize_space,
    option_str,
    select,
    visible_lines,
)

NAME = "delegation-page"
_SENTENCE_WORDS = ("Delegation", "Делегация", "составе делегации")

_MEMBERS_LABEL_RE = re.compile(
    r"^(?:(?:The\s+)?(?:members|composition)\s+of\s+the\s+delegation|Delegation\s+members|"
    r"Members|Состав\s+делегации|Члены\s+делегации)\s*:?\s*",
    re.IGNORECASE,
)
_HEAD_RE = re.compile(
    r"^(?:Head\s+of\s+(?:the\s+)?[Dd]elegation|Руководитель\s+делегации|Глава\s+делегации)"
    r"\s*[:\-–—]?\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
_LIST_SPLIT_RE = re.compile(r"\s*[,;]\s*")
# "Кошанов Ерлан Жаканович - член Совета ПА ОДКБ", "Viktor Kogut (Chairman)": a member with
# a role. A part after a name whose first word is in lower case ("..., член Совета") is its
# role too.
_ROLE_DASH_RE = re.compile(r"\s+[-–—]\s+")
_ROLE_BRACKETS_RE = re.compile(r"^(?P<name>[^()]+?)\s*\((?P<role>[^()]+)\)\s*$")


@dataclass
class MemberNames:
    names: list[str]  # as written
    roles: dict[str, str]  # name as written -> role as written
    rejected: list[str]  # parts that are neither a name nor a name's role


@dataclass
class _Candidate:
    index: int  # of the composition piece
    record: DelegationRecord
    members: MemberNames


def read_member_names(lines: list[str]) -> MemberNames:
    """Names from member lines (comma/semicolon lists or one per line), with the roles
    written beside them, and the parts that are neither."""
    out = MemberNames([], {}, [])
    for line in lines:
        line = _MEMBERS_LABEL_RE.sub("", line).strip()
        previous: str | None = None  # the name read just before, in this line
        for part in _LIST_SPLIT_RE.split(line) if line else []:
            words = part.split(maxsplit=1)
            if previous is not None and words and words[0].islower():  # "..., член Совета"
                role = out.roles.get(previous)
                out.roles[previous] = f"{role}, {part}" if role else part
                continue
            name, role = _name_and_role(part)
            if name is not None:
                out.names.append(name)
                if role:
                    out.roles[name] = role
                previous = name
            elif clean_name(part):
                out.rejected.append(part)
                previous = None
    return out


def _name_and_role(part: str) -> tuple[str | None, str | None]:
    name = clean_name(part)
    if looks_like_name(name):
        return name, None
    pieces = _ROLE_DASH_RE.split(part, maxsplit=1)
    match = _ROLE_BRACKETS_RE.match(part) if len(pieces) == 1 and "(" in part else None
    if match is not None:
        pieces = [match.group("name"), match.group("role")]
    # (a name is at most 80 characters: longer text is not cleaned only to be rejected)
    if len(pieces) == 2 and len(pieces[0]) <= 80 and looks_like_name(clean_name(pieces[0])):
        return clean_name(pieces[0]), normalize_space(pieces[1]).strip(" .;") or None
    return None, None


def _member_region(pieces: list[Piece], start: int) -> list[str]:
    """The OTHER lines right after piece ``start``, up to the next statement or head line."""
    lines: list[str] = []
    for piece in pieces[start + 1 :]:
        if piece.kind != OTHER or _HEAD_RE.match(piece.text):
            break
        lines.append(piece.text)
    return lines


def _read_head(pieces: list[Piece]) -> tuple[str | None, str | None]:
    for index, piece in enumerate(pieces):
        match = _HEAD_RE.match(piece.text) if piece.kind == OTHER else None
        if match is None:
            continue
        following = [p.text for p in pieces[index + 1 : index + 3]]
        rest = match.group("rest").strip()
        if rest:
            name, _, post = rest.partition(",")
            post = post.strip() or (following[0] if following else "")
            return clean_name(name) or None, post or None
        if following and looks_like_name(clean_name(following[0])):
            return clean_name(following[0]), following[1] if len(following) > 1 else None
    return None, None


def _candidates(
    pieces: list[Piece], delegation: str | None, skipped: list[str]
) -> list[_Candidate]:
    """The readable composition sentences. An unreadable one is a ParseError, unless it
    names a known parliament other than ``delegation`` (then a note in ``skipped``)."""
    registry = load_registry()
    out: list[_Candidate] = []
    for index, piece in enumerate(pieces):
        if piece.kind != COMPOSITION:
            continue
        try:
            record = read_composition(piece.text, registry, [])
        except CompositionError as exc:
            other = exc.delegation_id
            if delegation is None or other is None or other == delegation:
                raise ParseError(f"{NAME}: {exc}") from exc
            note = f"{other}: {exc} (another delegation's sentence: skipped)"
            if note not in skipped:
                skipped.append(note)
            continue
        out.append(_Candidate(index, record, read_member_names(_member_region(pieces, index))))
    return out


def _choose(candidates: list[_Candidate], delegation: str | None) -> _Candidate:
    pool = candidates
    if delegation is not None:
        pool = [c for c in candidates if c.record.delegation_id == delegation]
        if not pool:
            found = ", ".join(sorted({c.record.delegation_id for c in candidates}))
            raise ParseError(
                f"{NAME}: no composition sentence for delegation {delegation} (found: {found})"
            )
    with_members = [c for c in pool if c.members.names]
    if with_members:  # the sentence followed by the most names (a sidebar has none)
        return max(with_members, key=lambda c: len(c.members.names))
    if len({c.record.delegation_id for c in pool}) > 1:
        found = ", ".join(c.record.delegation_id for c in pool)
        raise ParseError(
            f"{NAME}: {len(pool)} delegations' sentences ({found}), none followed by member "
            "names; set the source's delegation to choose"
        )
    return pool[0]


def parse_delegation_page(html: str, url: str, options: Mapping[str, Any]) -> ParseResult:
    result = ParseResult(NAME)
    if not has_statement_keyword(html):
        result.found = False
        result.warnings.append("no delegation composition on this page")
        return result
    scope = read_scope(html, options, NAME)
    members_selector = option_str(options, "members")
    selected_members: MemberNames | None = None
    if members_selector is not None and scope is not None:
        nodes = select(scope, members_selector, "members")
        if not nodes:
            raise ParseError(f"{NAME}: members selector {members_selector!r} matched nothing")
        selected_members = read_member_names([inline_text(n) for n in nodes])
        result.warnings += [
            f"not read as a member name: {part!r}" for part in selected_members.rejected
        ]
    if scope is None:
        raise ParseError(f"{NAME}: the page has no body")
    # First only the containers of the blocks holding a composition sentence (the members
    # and other lines sit beside it); the whole scope when no sentence there has members.
    containers = _outermost(
        [block.parent or block for block in blocks_containing(scope, _SENTENCE_WORDS)]
    )
    pieces = split_pieces([line for c in containers for line in visible_lines(c)])
    links = [link for c in containers for link in page_links(c, url)]
    delegation = option_str(options, "delegation")
    skipped: list[str] = []
    candidates = _candidates(pieces, delegation, skipped)
    if not any(c.members.names for c in candidates):
        pieces, links = split_pieces(visible_lines(scope)), page_links(scope, url)
        candidates = _candidates(pieces, delegation, skipped)
    result.warnings += skipped
    if not candidates:
        if skipped:
            raise ParseError(
                f"{NAME}: no readable composition sentence for delegation {delegation}; "
                + "; ".join(skipped[:3])
            )
        result.found = False
        result.warnings.append("no delegation composition on this page")
        return result
    chosen = _choose(candidates, delegation)
    # The chosen sentence's section ends at the next composition sentence, read or skipped.
    following = [
        index
        for index, piece in enumerate(pieces)
        if index > chosen.index and piece.kind == COMPOSITION
    ]
    section = pieces[chosen.index : following[0] if following else len(pieces)]
    try:
        records = assemble(section, links, load_registry(), result.warnings)
    except CompositionError as exc:  # not reached: the section holds one read sentence
        raise ParseError(f"{NAME}: {exc}") from exc
    if not records:
        raise ParseError(f"{NAME}: could not read the composition sentence {section[0].text!r}")
    record = records[0]
    members = selected_members if selected_members is not None else chosen.members
    if selected_members is None:
        result.warnings += [
            f"not read as a member name: {part!r}" for part in chosen.members.rejected
        ]
    record.members = _unique_members(members.names, result.warnings)
    record.member_roles = {n: r for n, r in members.roles.items() if n in record.members}
    record.head, record.head_post = _read_head(section)
    if not record.members:
        result.warnings.append(f"{record.delegation_id}: no member names found")
    elif len(record.members) != record.total:
        result.warnings.append(
            f"{record.delegation_id}: the page states {record.total} seats but lists "
            f"{len(record.members)} member names"
        )
    result.records = [record]
    result.unreadable = unreadable_seats(NAME, result.records)
    return result


def _outermost(nodes: list[LexborNode]) -> list[LexborNode]:
    """``nodes`` without duplicates and without those inside another one, in order."""
    ids = {node.mem_id for node in nodes}
    out: list[LexborNode] = []
    seen: set[int] = set()
    for node in nodes:
        parent, inside = node.parent, False
        while parent is not None and not inside:
            inside = parent.mem_id in ids
            parent = parent.parent
        if not inside and node.mem_id not in seen:
            seen.add(node.mem_id)
            out.append(node)
    return out


def _unique_members(names: list[str], warnings: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        key = name_key(name)
        if key in seen:
            warnings.append(f"member listed twice: {name!r}")
            continue
        seen.add(key)
        out.append(name)
    return out


SPEC = ParserSpec.declare(
    parse_delegation_page,
    NAME,
    version=3,
    description="A national delegation's page on the Assembly site: composition, members, "
    "plenipotentiary, websites, head of delegation.",
    options={
        "delegation": OptionSpec(str, "the source's delegation id: which sentence to read"),
        "select": OptionSpec(str, "CSS selector of the part of the page to read (default: all)"),
        "members": OptionSpec(str, "CSS selector of the member names (default: found by text)"),
    },
)
