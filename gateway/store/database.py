"""Engine creation and schema upgrades (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).parent / "migrations"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            database_url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            hide_parameters=True,  # SQL parameters are patient data: keep them out of errors and logs
            connect_args={"timeout": 30, "check_same_thread": False},
        )
        _configure_sqlite(engine, None if not path or path == ":memory:" else Path(f"{path}-writer.lock"))
        return engine
    return create_engine(
        database_url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        hide_parameters=True,
        pool_size=10,
        max_overflow=10,
        # No pre-ping (a round trip per request): a connection the server dropped fails its
        # request with 503, and SQLAlchemy then discards the pool's stale connections.
        pool_recycle=3600,
    )


def open_database(database_url: str, *, upgrade_sqlite: bool = True) -> Engine:
    """The engine for a store. The embedded SQLite store upgrades its own schema; PostgreSQL
    waits for `gateway db upgrade` (an operator's decision in production)."""
    engine = make_engine(database_url)
    if upgrade_sqlite and engine.dialect.name == "sqlite":
        upgrade(engine)
    return engine


def _configure_sqlite(engine: Engine, writer_lock: Path | None) -> None:
    """WAL for concurrent readers; writes take the write lock at BEGIN (IMMEDIATE) so that two
    writers queue instead of failing half-way with "database is locked" when a read upgrades.

    Writers first take an OS lock on `writer_lock` (flock, held until commit or rollback): a
    writer waiting for SQLite's own lock sleeps in its busy handler for 1 to 100 ms at a time
    and polls, which under 20 concurrent briefs (each commits its audit record) made the slowest
    twentieth wait ~100 ms longer than the rest; a waiter on flock is woken as soon as the lock
    is free. Threads and processes both queue on it (each connection has its own descriptor)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        if writer_lock is not None:
            record.info["writer_lock"] = os.open(writer_lock, os.O_RDWR | os.O_CREAT, 0o600)

    @event.listens_for(engine, "close")
    def _on_close(_dbapi_connection: Any, record: Any) -> None:
        descriptor = record.info.pop("writer_lock", None)
        if descriptor is not None:
            os.close(descriptor)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        writing = connection.get_execution_options().get("write", False)
        # A thread that already writes through another connection does not wait on the flock
        # (it would wait for itself forever); SQLite's own lock then times out with an error.
        if writing and not getattr(_writers, "holding", False):
            descriptor = connection.connection.info.get("writer_lock")
            if descriptor is not None:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                connection.info["holds_writer_lock"] = descriptor
                _writers.holding = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")
        except BaseException:
            _release_writer_lock(connection)
            raise

    @event.listens_for(engine, "commit")
    def _on_commit(connection: Connection) -> None:
        _release_writer_lock(connection)

    @event.listens_for(engine, "rollback")
    def _on_rollback(connection: Connection) -> None:
        _release_writer_lock(connection)


_writers = threading.local()  # `holding` is True while this thread holds a writer lock


def _release_writer_lock(connection: Connection) -> None:
    descriptor = connection.info.pop("holds_writer_lock", None)
    if descriptor is not None:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        _writers.holding = False


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is there already)."""
    with engine.begin() as connection:
        config = alembic_config(str(engine.url.render_as_string(hide_password=False)))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def after_bulk_load(engine: Engine) -> None:
    """What a large import should be followed by. SQLite: copy the write-ahead log into the
    database and empty it (otherwise the first requests' commits pay for the load's hundreds of
    megabytes of WAL). PostgreSQL: fresh planner statistics (ANALYZE), which autovacuum would
    gather later; until then new index rows look like nothing and searches are planned badly."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        elif engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def is_current(engine: Engine) -> bool:
    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return set(current) == set(script.get_heads())


@contextmanager
def writing(database: Engine) -> Iterator[Connection]:
    """A write transaction: on SQLite it takes the write lock at BEGIN (IMMEDIATE), so that two
    writers queue on busy_timeout instead of one failing with "database is locked"."""
    with database.connect() as connection:
        connection = connection.execution_options(write=True)
        with connection.begin():
            yield connection
