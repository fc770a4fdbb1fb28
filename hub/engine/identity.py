"""Which canonical record is this vendor record? (DESIGN.md, "resolve identity")

In order of trust: a link (we have seen this external id before); the hub's own key written
into the vendor record (we created it there); the flow's match keys (same tax id, same
e-mail...) against records we already know; otherwise it is new. A match key that points
at two records is ambiguous: we link nothing and report it, because guessing would merge two
customers for good.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hub.mapping.paths import make_getter, parse_path

_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")
_SPACES = re.compile(r"\s+")


_NAMESPACE = uuid.UUID("6f2b1c3e-5a4d-4e8f-9b7a-2c1d0e9f8a7b")


def new_canonical_id(entity: str, system: str, obj: str, external_id: str) -> str:
    """The id of a canonical record of `entity` first seen as this vendor record.

    Derived from the vendor record, not random: if the hub crashes after writing a new record
    to a target but before committing its links, the retry derives the same id, and the
    target upserts by it instead of creating the record a second time. The entity is part of
    it because one vendor record can be several entities (an Odoo sale.order is an order and
    the request of its contract approval), and a canonical id names one golden record.
    """
    return uuid.uuid5(_NAMESPACE, f"{entity}\x1f{system}\x1f{obj}\x1f{external_id}").hex


def normalise_key(key: str, value: Any) -> str | None:
    """A match-key value in the form two systems agree on, or None when there is nothing to match."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if not text:
        return None
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "tax_id":
        return _NOT_ALNUM.sub("", text).upper() or None
    if leaf == "email":
        return text.lower()
    if leaf in ("phone", "mobile"):
        digits = re.sub(r"[^0-9]", "", text)
        return ("+" + digits) if digits else None
    return _SPACES.sub(" ", text).casefold()


@dataclass(frozen=True)
class MatchKeys:
    """A flow's match keys, compiled into getters over canonical records."""

    keys: tuple[str, ...]
    getters: tuple[Callable[[Any], Any], ...]

    @classmethod
    def of(cls, keys: Iterable[str]) -> MatchKeys:
        keys = tuple(keys)
        return cls(keys, tuple(make_getter(parse_path(k)) for k in keys))

    def values(self, record: dict[str, Any]) -> list[tuple[str, str]]:
        """(key, normalised value) for each key the record has a value for, in order of trust."""
        out = []
        for key, get in zip(self.keys, self.getters):
            value = normalise_key(key, get(record))
            if value is not None:
                out.append((key, value))
        return out


@dataclass
class Resolution:
    """The outcome for one record: its canonical id, how it was found, or why not."""

    canonical_id: str | None
    how: str  # link | hub_key | match | new | ambiguous
    detail: str = ""


def decide(candidates_by_key: list[tuple[str, str, list[str]]]) -> Resolution | None:
    """Pick a canonical id from match-key hits, most trusted key first.

    `candidates_by_key` holds (key, value, canonical ids having that value). The first key
    with any hit decides: one id is a match, several are ambiguous.
    """
    for key, value, ids in candidates_by_key:
        unique = sorted(set(ids))
        if len(unique) == 1:
            return Resolution(unique[0], "match", f"{key}={value}")
        if len(unique) > 1:
            return Resolution(None, "ambiguous", f"{key} '{value}' matches {len(unique)} records: {', '.join(unique[:5])}")
    return None
