"""Reusable pytest fixtures giving tests a real, migrated, empty store.

`store` runs a test on SQLite (a fresh temporary file) and on PostgreSQL (a database created
for the session, emptied before each test). PostgreSQL needs `SYNCHUB_TEST_PG_URL`: unset,
its params are skipped; set but unreachable, they fail, so CI notices a dead database.

Other test folders use these with one line in their conftest.py:
`from tests.store.fixtures import *  # noqa: F403`
(or `pytest_plugins = ["tests.store.fixtures"]` in the top-level tests/conftest.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.store import Store, StoreUnavailable
from hub.store.testing import migrated_sqlite_file, sqlite_store_from, temporary_postgres_database, wipe

PG_URL_ENV = "SYNCHUB_TEST_PG_URL"
PG_SKIP_REASON = f"set {PG_URL_ENV} to run the PostgreSQL suite"

#: Parametrise a fixture or test over both backends with `params=BACKENDS`.
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]

__all__ = [
    "BACKENDS",
    "PG_URL_ENV",
    "make_store",
    "pg_database_url",
    "pg_session_store",
    "postgres_store",
    "sqlite_store",
    "sqlite_template",
    "store",
]


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """URL of a PostgreSQL database created for this test session and dropped after it."""
    base_url = os.environ.get(PG_URL_ENV)
    if not base_url:
        pytest.skip(PG_SKIP_REASON)
    try:
        with temporary_postgres_database(base_url) as url:
            yield url
    except StoreUnavailable as exc:
        pytest.fail(f"{PG_URL_ENV} is set but PostgreSQL is unusable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def pg_session_store(pg_database_url: str) -> Iterator[Store]:
    """The session's PostgreSQL store, migrated once. Prefer `postgres_store` (emptied)."""
    store = Store.open(pg_database_url)
    store.upgrade()
    yield store
    store.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that tests copy instead of migrating each time."""
    return migrated_sqlite_file(tmp_path_factory.mktemp("store-template") / "template.db")


def make_store(request: pytest.FixtureRequest, backend: str) -> Iterator[Store]:
    """Yield an empty, migrated store on `backend` ("sqlite" or "postgresql").

    For fixtures of other folders that want one backend or their own parametrisation:
        @pytest.fixture
        def store(request): yield from make_store(request, "sqlite")
    """
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        tmp_path: Path = request.getfixturevalue("tmp_path")
        store = sqlite_store_from(template, tmp_path / "synchub.db")
        try:
            yield store
        finally:
            store.dispose()
    elif backend == "postgresql":
        store = request.getfixturevalue("pg_session_store")
        wipe(store)
        yield store
    else:
        raise ValueError(f"unknown store backend {backend!r}")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """An empty, migrated store; the test runs once per backend."""
    yield from make_store(request, request.param)


@pytest.fixture
def sqlite_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """An empty, migrated SQLite store (for tests that only need the embedded backend)."""
    yield from make_store(request, "sqlite")


@pytest.fixture
def postgres_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """An empty, migrated PostgreSQL store (skipped without SYNCHUB_TEST_PG_URL)."""
    yield from make_store(request, "postgresql")
