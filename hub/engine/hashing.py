"""Content hashes that decide whether anything changed.

Two hashes per link (DESIGN.md, "Consistency rules"): what we last saw from a system and
what we last wrote to it. Both are hashes of JSON with sorted keys, so dict order never
makes an unchanged record look changed.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def record_hash(value: Any, salt: str = "") -> str:
    """A short, stable hash of a JSON-like value (and an optional salt such as a mapping's).

    It runs three times per record per run, hence orjson rather than the json module.
    """
    digest = hashlib.blake2b(salt.encode("utf-8"), digest_size=16)
    digest.update(orjson.dumps(value, option=_OPTIONS, default=str))
    return digest.hexdigest()
