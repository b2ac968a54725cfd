"""Engine creation and schema upgrades (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
import weakref
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
from sqlalchemy.exc import DBAPIError

MIGRATIONS = Path(__file__).parent / "migrations"
LOG = logging.getLogger(__name__)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


DEFAULT_WAIT_MS = 30_000  # operator commands (import, upgrade) wait this long for a lock


def make_engine(database_url: str, statement_timeout_ms: int | None = None) -> Engine:
    """`statement_timeout_ms` bounds how long one statement (or a wait for a lock) may take: the
    serving gateway's connections give up and answer 503 rather than freeze a worker behind a
    lock someone else holds. Operator commands leave it unset (a bulk load may take long)."""
    wait_ms = statement_timeout_ms or DEFAULT_WAIT_MS
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            database_url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            hide_parameters=True,  # SQL parameters are patient data: keep them out of errors and logs
            connect_args={"timeout": wait_ms / 1000, "check_same_thread": False},
        )
        writer_lock = None if not path or path == ":memory:" else Path(f"{path}-writer.lock")
        _configure_sqlite(engine, writer_lock, wait_ms)
        return engine
    options = f"-c statement_timeout={statement_timeout_ms} -c lock_timeout={statement_timeout_ms}"
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
        connect_args={"options": options} if statement_timeout_ms else {},
    )


def open_database(database_url: str, *, upgrade_sqlite: bool = True, statement_timeout_ms: int | None = None) -> Engine:
    """The engine for a store. The embedded SQLite store upgrades its own schema; PostgreSQL
    waits for `gateway db upgrade` (an operator's decision in production)."""
    engine = make_engine(database_url, statement_timeout_ms)
    if upgrade_sqlite and engine.dialect.name == "sqlite":
        upgrade(engine)
    elif not is_current(engine):
        engine.dispose()
        raise SchemaNotCurrent(
            f"the {engine.dialect.name} schema at {engine.url.render_as_string(hide_password=True)} is not current "
            "(never created, or older than this gateway): run `gateway db upgrade` first"
        )
    return engine


class SchemaNotCurrent(Exception):
    """The store's schema is missing or behind this code's migrations."""


def _configure_sqlite(engine: Engine, writer_lock: Path | None, wait_ms: int = DEFAULT_WAIT_MS) -> None:
    """WAL for concurrent readers; writes take the write lock at BEGIN (IMMEDIATE) so that two
    writers queue instead of failing half-way with "database is locked" when a read upgrades.

    Writers first take an OS lock on `writer_lock` (flock, held until commit or rollback): a
    writer waiting for SQLite's own lock sleeps in its busy handler for 1 to 100 ms at a time
    and polls, which under 20 concurrent briefs (each commits its audit record) made the slowest
    twentieth wait ~100 ms longer than the rest; a waiter on flock is woken as soon as the lock
    is free. Threads and processes both queue on it (each connection has its own descriptor)."""

    checkpointer = WalCheckpointer(engine) if writer_lock is not None else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before it returns, as on PostgreSQL. Under NORMAL a power
        # loss could take back the last commits: an EHR's acknowledged write, or the audit
        # record of a disclosure that had already left. It costs ~0.2 ms per commit here.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
        if checkpointer is not None:
            # Commits checkpoint the log themselves only past this size: the thread is behind.
            cursor.execute(f"PRAGMA wal_autocheckpoint={WalCheckpointer.BACKSTOP_PAGES}")
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
                _flock(descriptor, wait_ms)
                connection.info["holds_writer_lock"] = descriptor
                _writers.holding = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")
        except BaseException:
            _release_writer_lock(connection)
            raise

    @event.listens_for(engine, "commit")
    def _on_commit(connection: Connection) -> None:
        # SQLAlchemy announces a commit before making it. Make it here, so that the writer lock
        # is let go (and the checkpointer nudged) only once the data is in: otherwise the next
        # writer's BEGIN IMMEDIATE meets SQLite's lock and sleeps in its busy handler. The
        # driver commit SQLAlchemy then issues finds no transaction open and does nothing.
        driver = connection.connection.dbapi_connection
        assert driver is not None
        try:
            driver.commit()
        except sqlite3.Error as error:  # as SQLAlchemy would raise it (a full disk is a 503, not a 500)
            raise DBAPIError.instance("COMMIT", None, error, sqlite3.Error) from error
        if _release_writer_lock(connection) and checkpointer is not None:
            checkpointer.nudge()

    @event.listens_for(engine, "rollback")
    def _on_rollback(connection: Connection) -> None:
        _release_writer_lock(connection)


_writers = threading.local()  # `holding` is True while this thread holds a writer lock


def _flock(descriptor: int, wait_ms: int) -> None:
    """Take the writer lock, waiting at most `wait_ms`: a lock held by a stuck process (or
    another program) must not freeze the worker. Gives up as SQLite would: "database is locked"."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    deadline = time.monotonic() + wait_ms / 1000
    pause = 0.0002
    while True:
        time.sleep(pause)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                error = sqlite3.OperationalError("database is locked (the writer lock is held elsewhere)")
                raise DBAPIError.instance("BEGIN IMMEDIATE", None, error, sqlite3.Error) from error
            pause = min(pause * 2, 0.002)  # short: a waiter should start soon after the lock is free


def _release_writer_lock(connection: Connection) -> bool:
    """Release the writer lock if this connection holds it; whether it did (it wrote)."""
    descriptor = connection.info.pop("holds_writer_lock", None)
    if descriptor is None:
        return False
    fcntl.flock(descriptor, fcntl.LOCK_UN)
    _writers.holding = False
    return True


class WalCheckpointer:
    """Copies SQLite's write-ahead log into the database file from a background thread.

    By default SQLite checkpoints inside whichever commit takes the log past 1,000 pages: that
    commit copies pages into the database and waits for an fsync, about 70 of the 650 µs a
    resource cost to ingest (more as the database grows), and a brief whose audit commit draws
    it waits as long. Here a committing writer only nudges; a thread of the process runs a
    PASSIVE checkpoint (it waits for no reader or writer) at most every INTERVAL seconds, and
    SQLite releases the interpreter lock while it copies, so the copying overlaps the next
    requests. Commits still checkpoint themselves past BACKSTOP_PAGES (40 MB of log), should the
    thread fall behind or fail."""

    INTERVAL = 0.5
    BACKSTOP_PAGES = 10_000

    def __init__(self, engine: Engine) -> None:
        self._engine = weakref.ref(engine)  # the thread must not keep a dropped store alive
        self._wake = threading.Event()
        self._started_in: int | None = None
        self._lock = threading.Lock()
        self._last_nudge = 0.0

    def nudge(self) -> None:
        now = time.monotonic()
        if now - self._last_nudge < self.INTERVAL:
            return
        self._last_nudge = now
        if self._started_in != os.getpid():  # first write, or a forked worker: threads do not survive fork
            with self._lock:
                if self._started_in != os.getpid():
                    self._started_in = os.getpid()
                    self._wake = threading.Event()
                    threading.Thread(target=self._run, args=(self._wake,), name="wal-checkpointer", daemon=True).start()
        self._wake.set()

    def _run(self, wake: threading.Event) -> None:
        while True:
            nudged = wake.wait(timeout=60)
            engine = self._engine()
            if engine is None:
                return
            if not nudged:
                continue
            wake.clear()
            try:
                connection = engine.raw_connection()
                try:
                    connection.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                finally:
                    connection.close()
            except Exception:  # the store may be gone (a dropped test database): the backstop remains
                LOG.warning("WAL checkpoint failed", exc_info=True)
            del engine


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the schema to the newest migration (a no-op when it is there already); the revision
    before and after."""
    with engine.begin() as connection:
        config = alembic_config(str(engine.url.render_as_string(hide_password=False)))
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        after = MigrationContext.configure(connection).get_current_revision()
    return before, after


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
