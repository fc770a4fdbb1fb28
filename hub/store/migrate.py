"""Alembic, driven from code: the migrations ship inside the package, no alembic.ini.

`Store.upgrade()` hands Alembic an open connection (through `Config.attributes`) so that
migrations run on the store's own engine, with its SQLite pragmas and `BEGIN IMMEDIATE`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config for the packaged migrations, bound to a connection or a URL.

    The URL form is for Alembic's offline mode (`alembic upgrade --sql`), which needs no
    connection.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest migration shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The migration the database is at; None for an empty database."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(connection: Connection) -> None:
    """Apply every migration not yet applied, on the caller's connection and transaction."""
    command.upgrade(alembic_config(connection), "head")
