"""Alembic environment for the store.

Online: `Store.upgrade()` passes its connection in `config.attributes["connection"]`; when
it is absent (Alembic's own command line), an engine is built from `sqlalchemy.url` with the
store's own engine factory. Offline (`--sql`): SQL is rendered for `sqlalchemy.url`'s dialect.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from hub.store.engine import create_engine_for
from hub.store.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url given to the store's Alembic env")
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
