"""Content hashes that decide whether anything changed.

Two hashes per link (DESIGN.md, "Consistency rules"): what we last saw from a system and
what we last wrote to it. Both are hashes of JSON with sorted keys, so dict order never
makes an unchanged record look changed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def record_hash(value: Any, salt: str = "") -> str:
    """A short, stable hash of a JSON-like value (and an optional salt such as a mapping's)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.blake2b((salt + text).encode("utf-8"), digest_size=16).hexdigest()
