"""The delegations registry: who sits in the Assembly, their parliaments and chambers.

Read from ``config/delegations.toml``. Parsers use it to turn a parliament or chamber name as
written ("Парламента Республики Казахстан", "Senate of the Parliament of Kazakhstan") into a
stable id (``KZ``, ``senate``), and a chamber's members' title ("senators", "сенаторами")
into the chamber it names for a delegation. A parliament the registry does not know gets a
stable slug id (``x-parliament-of-narnia``) so that a new delegation can appear in the
facts; a chamber it does not know gets no id at all (the parser reports it as unreadable).

Text folding for matching and slugs (``fold_text``, ``slugify``) is ``pawatch.domain``'s.
"""

from __future__ import annotations

import pkgutil
import tomllib
from dataclasses import dataclass
from functools import cache
from typing import Any

from pawatch.domain import fold_text, slugify

REGISTRY_FILE = "delegations.toml"
# The grammatical endings a member title takes in a composition sentence: English plural,
# Russian noun cases ("senator", "senators", "сенатор", "сенатора", "сенаторами", ...).
TITLE_ENDINGS = ("", "s", "а", "у", "ом", "е", "ы", "ов", "ам", "ами", "ах")


def unknown_delegation_id(parliament: str) -> str:
    """The id of a parliament the registry does not know: ``x-`` and its slug."""
    return f"x-{slugify(parliament)}"


@dataclass(frozen=True)
class Chamber:
    id: str
    name_en: str
    name_ru: str
    aliases: tuple[str, ...]
    website: str | None
    # Stems of the title the chamber's members carry ("senator", "сенатор"), in English and
    # Russian; a title names this chamber when no other chamber of the delegation has it.
    member_titles: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name_en, self.name_ru, *self.aliases)


@dataclass(frozen=True)
class Delegation:
    id: str
    country_en: str
    country_ru: str
    parliament_en: str
    parliament_ru: str
    aliases: tuple[str, ...]
    chambers: tuple[Chamber, ...]
    country_short: str | None = None  # the everyday English name ("Kyrgyzstan"), for reports

    @property
    def names(self) -> tuple[str, ...]:
        return (self.parliament_en, self.parliament_ru, *self.aliases)

    @property
    def country(self) -> str:
        """The country's name for people: the short English name, else the official one."""
        return self.country_short or self.country_en

    def chamber(self, chamber_id: str) -> Chamber:
        for chamber in self.chambers:
            if chamber.id == chamber_id:
                return chamber
        raise KeyError(f"delegation {self.id} has no chamber {chamber_id!r}")


class Registry:
    """The known delegations, with name lookups that fold spelling noise."""

    def __init__(self, delegations: tuple[Delegation, ...]) -> None:
        self.delegations = delegations
        self._by_id = {d.id: d for d in delegations}
        self._delegation_names: list[tuple[str, str]] = sorted(
            ((fold_text(name), d.id) for d in delegations for name in d.names),
            key=lambda pair: -len(pair[0]),
        )
        self._chamber_names: dict[str, list[tuple[str, str]]] = {
            d.id: sorted(
                ((fold_text(name), c.id) for c in d.chambers for name in c.names),
                key=lambda pair: -len(pair[0]),
            )
            for d in delegations
        }
        # delegation id -> folded member-title stem -> the chamber ids whose members bear it
        self._titles: dict[str, dict[str, set[str]]] = {}
        for d in delegations:
            for c in d.chambers:
                for title in c.member_titles:
                    self._titles.setdefault(d.id, {}).setdefault(fold_text(title), set()).add(c.id)
        self.member_titles: tuple[str, ...] = tuple(
            sorted({fold_text(t) for d in delegations for c in d.chambers for t in c.member_titles})
        )
        # delegation id -> the folded names of its state and parliament (and their aliases)
        self._own_names: dict[str, tuple[str, ...]] = {
            d.id: tuple(fold_text(n) for n in (d.country_en, d.country_ru, *d.names))
            for d in delegations
        }

    def delegation(self, delegation_id: str) -> Delegation:
        """The delegation with this id; KeyError naming the known ids otherwise."""
        try:
            return self._by_id[delegation_id]
        except KeyError:
            known = ", ".join(self._by_id)
            raise KeyError(f"unknown delegation {delegation_id!r}; known: {known}") from None

    def has(self, delegation_id: str) -> bool:
        return delegation_id in self._by_id

    def match_delegation(self, text: str) -> str | None:
        """The id of the parliament named in ``text``: an exact name, else the longest name
        contained in it ("House of Representatives of the National Assembly of the Republic
        of Belarus" -> ``BY``); None when no known parliament is named."""
        folded = fold_text(text)
        if not folded:
            return None
        for name, delegation_id in self._delegation_names:
            if name == folded:
                return delegation_id
        padded = f" {folded} "
        for name, delegation_id in self._delegation_names:  # longest first
            if f" {name} " in padded:
                return delegation_id
        return None

    def resolve_delegation(self, text: str) -> str:
        """The registry id of the parliament in ``text``, or its stable ``x-<slug>`` id."""
        return self.match_delegation(text) or unknown_delegation_id(text)

    def match_chamber(self, delegation_id: str, text: str) -> str | None:
        """The id of the chamber of ``delegation_id`` that ``text`` names or starts with."""
        folded = fold_text(text)
        names = self._chamber_names.get(delegation_id, [])
        if not folded or not names:
            return None
        for name, chamber_id in names:
            if name == folded:
                return chamber_id
        for name, chamber_id in names:  # longest first
            if folded.startswith(name + " "):
                return chamber_id
        return None

    def match_member_title(self, delegation_id: str, noun: str) -> str | None:
        """The chamber of ``delegation_id`` whose members' title ``noun`` is, in any of
        ``TITLE_ENDINGS`` ("senators", "сенаторами" -> ``federation-council`` for RU); None
        when no chamber, or more than one, has that title."""
        titles = self._titles.get(delegation_id)
        folded = fold_text(noun)
        if not titles or not folded:
            return None
        found: set[str] = set()
        for ending in TITLE_ENDINGS:
            stem = folded.removesuffix(ending) if ending else folded
            if (stem != folded or not ending) and stem in titles:
                found |= titles[stem]
        return found.pop() if len(found) == 1 else None

    def names_only_delegation(self, delegation_id: str, text: str) -> bool:
        """True when ``text`` names no chamber, only ``delegation_id``'s state or parliament:
        it is empty or the end of one of their names ("of the Russian Federation",
        "Российской Федерации", "of the Parliament of Kazakhstan")."""
        folded = fold_text(text)
        if folded.startswith(("of ", "from ")):
            folded = folded.partition(" ")[2]
        if not folded:
            return True
        return any(
            name == folded or name.endswith(" " + folded)
            for name in self._own_names.get(delegation_id, ())
        )

    def chamber_ids(self, delegation_id: str) -> tuple[str, ...]:
        """The ids of the chambers of ``delegation_id`` (empty for an unknown delegation)."""
        delegation = self._by_id.get(delegation_id)
        return tuple(c.id for c in delegation.chambers) if delegation is not None else ()

    def single_chamber(self, delegation_id: str) -> str | None:
        """The chamber id of a one-chamber delegation; None for two chambers or unknown."""
        delegation = self._by_id.get(delegation_id)
        if delegation is not None and len(delegation.chambers) == 1:
            return delegation.chambers[0].id
        return None


def _text(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{REGISTRY_FILE}: {where}.{key}: expected a non-empty string")
    return value


def _texts(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{REGISTRY_FILE}: {where}.{key}: expected a list of strings")
    return tuple(value)


def _pair(table: dict[str, Any], key: str, where: str) -> tuple[str, str]:
    value = table.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"{REGISTRY_FILE}: {where}.{key}: expected a table with en and ru")
    return _text(value, "en", f"{where}.{key}"), _text(value, "ru", f"{where}.{key}")


def _read_chamber(raw: Any, where: str) -> Chamber:
    if not isinstance(raw, dict):
        raise ValueError(f"{REGISTRY_FILE}: {where}: expected a table")
    name_en, name_ru = _pair(raw, "name", where)
    website = raw.get("website")
    if website is not None and not isinstance(website, str):
        raise ValueError(f"{REGISTRY_FILE}: {where}.website: expected a string")
    return Chamber(
        id=_text(raw, "id", where),
        name_en=name_en,
        name_ru=name_ru,
        aliases=_texts(raw, "aliases", where),
        website=website,
        member_titles=_texts(raw, "member_titles", where),
    )


def _read_delegation(raw: Any, where: str) -> Delegation:
    if not isinstance(raw, dict):
        raise ValueError(f"{REGISTRY_FILE}: {where}: expected a table")
    country_en, country_ru = _pair(raw, "country", where)
    parliament_en, parliament_ru = _pair(raw, "parliament", where)
    short = raw["country"].get("short")
    if short is not None and (not isinstance(short, str) or not short.strip()):
        raise ValueError(f"{REGISTRY_FILE}: {where}.country.short: expected a non-empty string")
    chambers_raw = raw.get("chambers")
    if not isinstance(chambers_raw, list) or not chambers_raw:
        raise ValueError(f"{REGISTRY_FILE}: {where}.chambers: expected at least one chamber")
    return Delegation(
        id=_text(raw, "id", where),
        country_en=country_en,
        country_ru=country_ru,
        parliament_en=parliament_en,
        parliament_ru=parliament_ru,
        aliases=_texts(raw, "aliases", where),
        chambers=tuple(
            _read_chamber(c, f"{where}.chambers[{i}]") for i, c in enumerate(chambers_raw)
        ),
        country_short=short,
    )


def registry_from_text(text: str) -> Registry:
    """Build a registry from TOML text; ValueError naming the file and key when malformed."""
    data = tomllib.loads(text)
    raw = data.get("delegations")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{REGISTRY_FILE}: expected [[delegations]] tables")
    delegations = tuple(_read_delegation(d, f"delegations[{i}]") for i, d in enumerate(raw))
    ids = [d.id for d in delegations]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{REGISTRY_FILE}: duplicate delegation ids in {ids}")
    for delegation in delegations:
        chamber_ids = [c.id for c in delegation.chambers]
        if len(set(chamber_ids)) != len(chamber_ids):
            raise ValueError(
                f"{REGISTRY_FILE}: delegation {delegation.id}: duplicate chamber ids {chamber_ids}"
            )
    return Registry(delegations)


@cache
def load_registry() -> Registry:
    """The registry shipped with pawatch (read once, then cached)."""
    raw = pkgutil.get_data("pawatch.config", REGISTRY_FILE)  # no importlib.resources: start-up
    assert raw is not None, f"the bundled {REGISTRY_FILE} is unreadable"
    return registry_from_text(raw.decode("utf-8"))
