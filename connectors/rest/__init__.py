"""A connector declared entirely in YAML, for products with no connector of their own.

(Being built: this placeholder only registers the name so that the entry point resolves.)
"""

from typing import Any

SETTINGS_SCHEMA: dict[str, Any] = {}
