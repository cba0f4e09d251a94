"""Pure change derivation: two sets of facts in, the changes a user is alerted to out.

No database, no clock. ``diff_facts(old, new)`` pairs facts by ``(subject, attribute, key)``:
single-valued attributes (seats, plenipotentiary) become "changed from A to B"; multi-valued
ones (members, websites, news items) become added / removed, each naming its fact key
(``Change.key``); a member whose spelling changed (same person by the name normaliser, or a
near-identical spelling of one word of the name, not its other gender's form) is renamed. A
delegation that appears or disappears is one event, not one per fact. Wording that keeps every
fact the same yields nothing.

Single-valued attributes are compared by identity: when a fact carries a key (a person's name
identity), the same key with another value is a respelling, shown silently (no event); a
different key, or a different value where there is no key, is a change.

``identity(change)`` says what makes two sources' changes one delegation-level change: the
scope inside the attribute (a member's or website's key) and the identities of old and new.
"""

from __future__ import annotations

import difflib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pawatch.domain import Fact, fold_text

RENAME_SIMILARITY = 0.85  # two member keys this alike, one removed and one added, are a rename
# Endings that make a name's masculine and feminine forms (transliterated keys): "petrov" /
# "petrova", "petrovsky" / "petrovskaya", "tolstoy" / "tolstaya", "nurlanuly" / "nurlankyzy".
# Two keys that differ only by such a pair of endings name two people, not one spelled twice.
# Member keys are name skeletons (names.name_key folds y to i, so "-oy" reads "-oi", "-uly"
# "-uli", "-kyzy" "-kizi"); the raw spellings stay for keys made before that fold.
_MASCULINE_ENDINGS = (
    "skiy", "sky", "ski", "iy", "yy", "oy", "oi", "y", "i", "uly", "uli", "ogly", "ogli", "ugli",
)  # fmt: skip
_FEMININE_ENDINGS = (
    "skaya", "skaja", "skaia", "aya", "aja", "aia", "kyzy", "kizi", "gyzy", "gizi",
)  # fmt: skip


@dataclass(frozen=True)
class Change:
    kind: str
    subject: str
    attribute: str
    old: str | None
    new: str | None
    key: str = ""  # the fact key: a member's name key, a website's URL, a news item's URL
    old_key: str = ""  # single-valued attributes: the key of the old value

    @property
    def delegation(self) -> str | None:
        prefix, _, rest = self.subject.partition(":")
        return rest if prefix == "delegation" else None


FactId = tuple[str, str, str]


def _index(facts: Iterable[Fact]) -> tuple[dict[FactId, str], dict[FactId, str]]:
    """Values by fact id, and the keys of single-valued facts (indexed without their key:
    one value per subject and attribute)."""
    values: dict[FactId, str] = {}
    keys: dict[FactId, str] = {}
    for f in facts:
        if _single(f.attribute):
            fid = (f.subject, f.attribute, "")
            keys[fid] = f.key
        else:
            fid = (f.subject, f.attribute, f.key)
        values[fid] = f.value
    return values, keys


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


@dataclass(frozen=True)
class Identity:
    """What makes changes seen on several sources one delegation-level change: the same
    kind, delegation and attribute, the same ``scope`` inside the attribute (a member's or a
    website's key; empty for single-valued attributes) and the same identities of old and
    new (a seat count; a person's name key, else the folded name)."""

    scope: str
    old_id: str
    new_id: str


def identity(change: Change) -> Identity:
    def ident(value: str | None, key: str) -> str:
        if value is None:
            return ""
        if change.attribute.startswith("seats:"):
            return value
        return key or fold_text(value)

    if change.attribute in _ADDED or change.attribute in _REMOVED:
        if change.kind == "member_renamed":
            return Identity(change.key, fold_text(change.old or ""), fold_text(change.new or ""))
        return Identity(change.key, "", "")
    if change.attribute == "delegation":
        return Identity("", "", "")
    return Identity(
        "", ident(change.old, change.old_key), ident(change.new, change.key if change.new else "")
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
    (before, keys_before), (after, keys_after) = _index(old), _index(new)
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

    def differs(fid: FactId) -> bool:
        """The fact's value changed, and not only its spelling (the same identity key)."""
        if before.get(fid) == after.get(fid):
            return False
        old_key = keys_before.get(fid)
        return not (old_key and old_key == keys_after.get(fid))

    # A new representative brings (or takes) their post along: one event, not two.
    replaced = {
        s
        for s, a, k in before.keys() | after.keys()
        if a == "plenipotentiary" and differs((s, a, k))
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
        if not differs(fid):  # (a respelling of one identity: the shown value updates silently)
            continue
        old_value, new_value = before.get(fid), after.get(fid)
        old_key, new_key = keys_before.get(fid, ""), keys_after.get(fid, "")
        both = old_value is not None and new_value is not None
        if both or _single(attribute):
            kind = _kind_of_value_change(attribute)
            if kind is not None and (both or kind != "page_changed"):
                changes.append(
                    Change(kind, subject, attribute, old_value, new_value, new_key or key, old_key)
                )
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
            changes.extend(
                Change("member_renamed", subject, attribute, o, n, k) for o, n, k in renames
            )
        if attribute in _REMOVED:
            changes.extend(
                Change(_REMOVED[attribute], subject, attribute, v, None, k) for k, v in gone
            )
        if attribute in _ADDED:
            changes.extend(
                Change(_ADDED[attribute], subject, attribute, None, v, k) for k, v in came
            )
    return changes


def _pair_renames(
    gone: Sequence[tuple[str, str]], came: Sequence[tuple[str, str]]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str, str]]]:
    """Pair removed and added members whose keys are near-identical spellings of one name.

    Returns the members still removed, still added, and the renames as ``(old name, new name,
    new key)``.
    """
    renames: list[tuple[str, str, str]] = []
    left = list(came)
    still_gone: list[tuple[str, str]] = []
    for key, value in gone:
        best, best_ratio = -1, RENAME_SIMILARITY
        for i, (new_key, _) in enumerate(left):
            if not _one_spelling_apart(key, new_key):
                continue
            ratio = difflib.SequenceMatcher(None, key, new_key).ratio()
            if ratio >= best_ratio:
                best, best_ratio = i, ratio
        if best >= 0:
            new_key, new_value = left.pop(best)
            renames.append((value, new_value, new_key))
        else:
            still_gone.append((key, value))
    return still_gone, left, renames


def _one_spelling_apart(old_key: str, new_key: str) -> bool:
    """True when two name keys can be one person spelled twice: as many words, at most one
    word different, and that word not the other gender's form of the same name."""
    old_words, new_words = old_key.split(), new_key.split()
    if len(old_words) != len(new_words):
        return False
    old_only, new_only = (
        Counter(old_words) - Counter(new_words),
        Counter(new_words) - Counter(old_words),
    )
    if sum(old_only.values()) > 1 or sum(new_only.values()) > 1:
        return False
    if not old_only:  # the same words (cannot differ then: the keys would be equal)
        return True
    (old_word,), (new_word,) = old_only, new_only
    return not _gender_variants(old_word, new_word)


def _gender_variants(a: str, b: str) -> bool:
    """True when two name words are the masculine and feminine forms of one name
    ("petrov" / "petrova", "aleksandr" / "aleksandra", "petrovsky" / "petrovskaya")."""
    for one, other in ((a, b), (b, a)):
        if other in (one + "a", one + "а"):
            return True
        for masculine in _MASCULINE_ENDINGS:
            if not one.endswith(masculine):
                continue
            stem = one[: -len(masculine)]
            if stem and any(other == stem + feminine for feminine in _FEMININE_ENDINGS):
                return True
    return False


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
