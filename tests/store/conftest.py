"""Store fixtures for tests/store; the definitions live in fixtures.py for other folders to reuse."""

from tests.store.fixtures import *  # noqa: F403
