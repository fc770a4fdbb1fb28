"""Fixtures of the API tests: the store suite's stores (SQLite, and PostgreSQL when configured)."""

from tests.store.fixtures import pg_database_url, pg_session_store, sqlite_template  # noqa: F401
