""""Did you mean ...?" for names an admin may misspell: keys, systems, transforms, fields."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like `word`, if any is close enough to be a plausible typo."""
    pool = [c for c in candidates if isinstance(c, str)]
    matches = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    lowered = {c.lower(): c for c in pool}
    return lowered.get(word.lower())


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ready suffix for an error message: ` (did you mean 'x'?)`, or empty."""
    match = closest(word, candidates)
    return f" (did you mean '{match}'?)" if match else ""
