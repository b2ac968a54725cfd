"""An empty store for a test or the fuzz run: a new SQLite file, or a new database on the
PostgreSQL server given, dropped afterwards."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine


@contextmanager
def scratch_database(database_url: str | None, directory: Path, name: str) -> Iterator[str]:
    """`database_url` says the kind: SQLite (or None) makes `directory/name.sqlite3`; a
    PostgreSQL URL makes a database `gateway_<name>_<random>` on that server."""
    if not database_url or database_url.startswith("sqlite"):
        yield f"sqlite:///{directory / f'{name}.sqlite3'}"
        return
    database = f"gateway_{name}_{secrets.token_hex(4)}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {database}")
    try:
        yield database_url.rsplit("/", 1)[0] + f"/{database}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.dispose()
