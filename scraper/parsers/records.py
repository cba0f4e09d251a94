"""The typed records parsers return, and the facts each one states.

Facts are what the change layer compares (see ``base.Fact``); everything else on a record
(dates, summaries, roles, links, chamber names as written) is kept for reports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pawatch.domain import Fact
from pawatch.scraper.parsers.names import name_key
from pawatch.scraper.parsers.text import normalize_url


def website_key(url: str) -> str:
    """A website's identity: its normalised URL without the scheme, ``www.`` and the trailing
    slash (``http://www.Kenesh.kg/`` and ``https://kenesh.kg`` are one site)."""
    normal = normalize_url(url)
    _, sep, rest = normal.partition("://")
    return (rest if sep else normal).rstrip("/")


@dataclass(frozen=True)
class ChamberSeats:
    """One chamber's share of a delegation: "7 deputies from the House of Representatives"."""

    chamber_id: str | None  # registry id; None: the registry cannot tell which chamber
    chamber: str | None  # the chamber's name as written; None when the sentence names none
    seats: int
    noun: str  # "deputies", "members", "депутатами", ... as written


@dataclass(frozen=True)
class Website:
    """A "Website of the <chamber>: <url>" line that has a URL."""

    url: str  # as given (the link's href, else the URL written in the text)
    label: str  # the text before the colon, as written
    chamber_id: str | None  # the chamber the label names, when it names a known one


@dataclass
class DelegationRecord:
    """A national delegation as one page states it (``delegations``, ``delegation-page``)."""

    delegation_id: str  # registry id ("KG") or "x-<slug>" for an unknown parliament
    parliament: str  # the parliament's name as written in the composition sentence
    chambers: list[ChamberSeats]
    sentence: str  # the composition sentence as written
    plenipotentiary: str | None = None
    plenipotentiary_role: str | None = None
    websites: list[Website] = field(default_factory=list)
    members: list[str] = field(default_factory=list)  # delegation-page: names as written
    head: str | None = None  # delegation-page: head of the delegation, when stated
    head_post: str | None = None
    member_roles: dict[str, str] = field(default_factory=dict)  # name as written -> role
    # Set when a chamber of the sentence cannot be resolved (the message quotes the phrase):
    # the record then states no seats (the page's seats are unreadable, the stored ones held).
    seats_problem: str | None = None

    @property
    def subject(self) -> str:
        return f"delegation:{self.delegation_id}"

    @property
    def total(self) -> int:
        return sum(c.seats for c in self.chambers)

    def facts(self) -> list[Fact]:
        subject = self.subject
        out = [Fact(subject, "delegation", "", self.parliament)]
        if self.seats_problem is None:
            out += [
                Fact(subject, f"seats:{c.chamber_id}", "", str(c.seats))
                for c in self.chambers
                if c.chamber_id is not None
            ]
            out.append(Fact(subject, "seats:total", "", str(self.total)))
        if self.plenipotentiary:  # a person: keyed by who, shown as written
            out.append(
                Fact(
                    subject, "plenipotentiary", name_key(self.plenipotentiary), self.plenipotentiary
                )
            )
            if self.plenipotentiary_role:
                out.append(Fact(subject, "plenipotentiary_role", "", self.plenipotentiary_role))
        seen: set[str] = set()
        for site in self.websites:  # a site: keyed by its URL's identity, shown as written
            key = website_key(site.url)
            if key not in seen:
                seen.add(key)
                out.append(Fact(subject, "website", key, site.url))
                if site.chamber_id is not None:
                    out.append(Fact(subject, "website_chamber", key, site.chamber_id))
        out += _member_facts(subject, self.members, self.member_roles)
        if self.head:
            out.append(Fact(subject, "head", name_key(self.head), self.head))
        return out


@dataclass(frozen=True)
class NewsItem:
    """A news item from a list page, or an article page (then ``text`` is set)."""

    url: str  # absolute
    title: str
    date: str | None  # ISO date, None when missing or unreadable
    date_text: str | None  # the date as written
    summary: str | None = None
    text: str | None = None  # article pages: the article's text, normalised
    watch_hits: tuple[str, ...] = ()  # the source's watch terms found in title/summary/text

    def facts(self) -> list[Fact]:
        return [Fact("news", "item", self.url, self.title)]


@dataclass(frozen=True)
class RosterEntry:
    """One member of a national roster."""

    name: str  # as written (whitespace normalised, run-together words split)
    delegation: str | None  # the source's delegation id, when configured
    role: str | None = None
    chamber: str | None = None
    link: str | None = None  # absolute URL of the member's page

    def facts(self) -> list[Fact]:
        subject = f"delegation:{self.delegation}" if self.delegation else "roster"
        return [Fact(subject, "member", name_key(self.name), self.name)]


@dataclass(frozen=True)
class PageText:
    """The readable text of a page (or of a CSS selection of it)."""

    text: str
    selector: str

    def facts(self) -> list[Fact]:
        """One fact naming the text by its digest: the text itself stays in the snapshot
        (``pawatch diff`` shows it), so a 60 KB page costs a 40-byte fact, not 60 KB."""
        return [Fact("page", "text", "", text_digest(self.text))]


def text_digest(text: str) -> str:
    """``sha256:<first 16 hex> (<n> chars)``: the identity of a normalised page text."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"sha256:{digest} ({len(text)} chars)"


def _member_facts(subject: str, members: list[str], roles: dict[str, str]) -> list[Fact]:
    out: list[Fact] = []
    seen: set[str] = set()
    for name in members:
        key = name_key(name)
        if key and key not in seen:
            seen.add(key)
            out.append(Fact(subject, "member", key, name))
            if name in roles:
                out.append(Fact(subject, "member_role", key, roles[name]))
    return out
