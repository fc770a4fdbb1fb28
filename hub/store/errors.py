"""The store's errors.

The store is the one room that talks SQL, so it is also the one that knows when a failure
is the database's fault. Callers decide by class: `StoreUnavailable` means "the database
could not be reached, try again later" (the CLI prints it, a worker backs off), while a
plain `StoreError` means the store was asked for something it does not support.
Messages never carry a password: URLs are rendered with it hidden.
"""

from __future__ import annotations

from hub.errors import SynchubError


class StoreError(SynchubError):
    """The store cannot do what was asked (unsupported URL, schema not migrated, ...)."""


class StoreUnavailable(StoreError):
    """The database could not be reached; retrying later may help."""
