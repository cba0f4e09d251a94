"""Pure change derivation: two sets of facts in, the changes a user is alerted to out.

No database, no clock. ``diff_facts(old, new)`` pairs facts by ``(subject, attribute, key)``:
single-valued attributes (seats, plenipotentiary) become "changed from A to B"; multi-valued
ones (members, websites, news items) become added / removed; a member whose spelling changed
(same person by the name normaliser, or a near-identical spelling) is renamed. A delegation
that appears or disappears is one event, not one per fact. Wording that keeps every fact the
same yields nothing.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from config.registry import fold_text
from scraper.parsers.base import Fact

HEALTH_KINDS = ("source_failing", "source_recovered", "parse_broken", "parse_recovered")
CHANGE_KINDS = (
    "composition",
    "representative",
    "member_added",
    "member_removed",
    "member_renamed",
    "website_added",
    "website_removed",
    "delegation_added",
    "delegation_removed",
    "news",
    "page_changed",
)
RENAME_SIMILARITY = 0.85  # two member keys this alike, one removed and one added, are a rename


@dataclass(frozen=True)
class Change:
    kind: str
    subject: str
    attribute: str
    old: str | None
    new: str | None

    @property
    def delegation(self) -> str | None:
        prefix, _, rest = self.subject.partition(":")
        return rest if prefix == "delegation" else None


FactId = tuple[str, str, str]


def _index(facts: Iterable[Fact]) -> dict[FactId, str]:
    return {(f.subject, f.attribute, f.key): f.value for f in facts}


def _kind_of_value_change(attribute: str) -> str | None:
    if attribute.startswith("seats:"):
        return "composition"
    if attribute in ("plenipotentiary", "plenipotentiary_role", "head"):
        return "representative"
    if attribute == "member":
        return "member_renamed"
    if attribute == "text":
        return "page_changed"
    return None  # parliament name wording, news title edits, URL spelling: not a change


_ADDED = {
    "member": "member_added",
    "website": "website_added",
    "item": "news",
}
_REMOVED = {
    "member": "member_removed",
    "website": "website_removed",
}


def _single(attribute: str) -> bool:
    return attribute.startswith("seats:") or attribute in (
        "plenipotentiary",
        "plenipotentiary_role",
        "head",
        "text",
    )


def _one_chamber(facts: dict[FactId, str]) -> set[str]:
    """Subjects whose seats are stated for exactly one chamber."""
    chambers: dict[str, int] = defaultdict(int)
    for subject, attribute, _ in facts:
        if attribute.startswith("seats:") and attribute != "seats:total":
            chambers[subject] += 1
    return {subject for subject, n in chambers.items() if n == 1}


def _chamber_changed(before: dict[FactId, str], after: dict[FactId, str], subject: str) -> bool:
    return any(
        fid[0] == subject
        and fid[1].startswith("seats:")
        and fid[1] != "seats:total"
        and before.get(fid) != after.get(fid)
        for fid in before.keys() | after.keys()
    )


def diff_facts(old: Iterable[Fact], new: Iterable[Fact]) -> list[Change]:
    """The changes from fact set ``old`` to fact set ``new``, in a stable order."""
    before, after = _index(old), _index(new)
    subjects_before = {s for s, a, _ in before if a == "delegation"}
    subjects_after = {s for s, a, _ in after if a == "delegation"}
    changes: list[Change] = []
    for subject in sorted(subjects_after - subjects_before):
        changes.append(
            Change(
                "delegation_added", subject, "delegation", None, after[(subject, "delegation", "")]
            )
        )
    for subject in sorted(subjects_before - subjects_after):
        changes.append(
            Change(
                "delegation_removed",
                subject,
                "delegation",
                before[(subject, "delegation", "")],
                None,
            )
        )
    skip = (subjects_after - subjects_before) | (subjects_before - subjects_after)

    # A new representative brings (or takes) their post along: one event, not two.
    replaced = {
        s
        for s, a, k in before.keys() | after.keys()
        if a == "plenipotentiary" and before.get((s, a, k)) != after.get((s, a, k))
    }
    # A one-chamber delegation's total is its chamber's seats: when both change, one event.
    unicameral = {
        s for s in _one_chamber(before) & _one_chamber(after) if _chamber_changed(before, after, s)
    }
    removed: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    added: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for fid in sorted(before.keys() | after.keys()):
        subject, attribute, key = fid
        if subject in skip or attribute == "delegation":
            continue
        if attribute == "seats:total" and subject in unicameral:
            continue
        if attribute == "plenipotentiary_role" and subject in replaced:
            continue
        old_value, new_value = before.get(fid), after.get(fid)
        if old_value == new_value:
            continue
        if old_value is not None and new_value is not None:
            kind = _kind_of_value_change(attribute)
            if kind is not None:
                changes.append(Change(kind, subject, attribute, old_value, new_value))
        elif _single(attribute):
            kind = _kind_of_value_change(attribute)
            if kind is not None and kind != "page_changed":
                changes.append(Change(kind, subject, attribute, old_value, new_value))
        elif old_value is not None:
            removed[(subject, attribute)].append((key, old_value))
        else:
            assert new_value is not None
            added[(subject, attribute)].append((key, new_value))

    for group in sorted(removed.keys() | added.keys()):
        subject, attribute = group
        gone, came = removed.get(group, []), added.get(group, [])
        if attribute == "member":
            gone, came, renames = _pair_renames(gone, came)
            changes.extend(Change("member_renamed", subject, attribute, o, n) for o, n in renames)
        if attribute in _REMOVED:
            changes.extend(
                Change(_REMOVED[attribute], subject, attribute, v, None) for _, v in gone
            )
        if attribute in _ADDED:
            changes.extend(Change(_ADDED[attribute], subject, attribute, None, v) for _, v in came)
    return changes


def _pair_renames(
    gone: Sequence[tuple[str, str]], came: Sequence[tuple[str, str]]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """Pair removed and added members whose keys are near-identical spellings of one name."""
    renames: list[tuple[str, str]] = []
    left = list(came)
    still_gone: list[tuple[str, str]] = []
    for key, value in gone:
        best, best_ratio = -1, RENAME_SIMILARITY
        for i, (new_key, _) in enumerate(left):
            ratio = difflib.SequenceMatcher(None, key, new_key).ratio()
            if ratio >= best_ratio:
                best, best_ratio = i, ratio
        if best >= 0:
            renames.append((value, left.pop(best)[1]))
        else:
            still_gone.append((key, value))
    return still_gone, left, renames


def count_members(facts: Iterable[Fact]) -> int:
    return sum(1 for f in facts if f.attribute == "member")


def matches_watch(text: str, terms: Sequence[str]) -> bool:
    """True when ``text`` mentions any watch term (case-insensitive, any language).

    Folded like the news parser's watch hits (``config.registry.fold_text``: case, ё/е,
    quotes, punctuation, Latin/Cyrillic look-alikes), so an item the parser flags is an item
    the alert filter lets through. A term that folds to nothing matches nothing.
    """
    folded = fold_text(text)
    return any((needle := fold_text(term)) and needle in folded for term in terms)
