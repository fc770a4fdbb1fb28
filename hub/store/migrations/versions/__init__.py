"""Alembic revisions; Alembic loads them by path, this file only makes setuptools ship them."""
