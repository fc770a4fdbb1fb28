"""Fixtures of the engine tests: the fake-systems `hub` (harness.py) and the store suite's
PostgreSQL fixtures (a database per session, emptied for each test)."""

from harness import hub  # noqa: F401

from tests.store.fixtures import pg_database_url, pg_session_store, postgres_store  # noqa: F401
