"""SQLite writers queue on an OS lock (flock) around their transactions."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from gateway.store.database import WalCheckpointer, after_bulk_load, make_engine, writing
from tests.conftest import fhir_json


def test_writers_take_turns_and_a_failed_writer_lets_go(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (n INTEGER)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))
    assert (tmp_path / "store.sqlite3-writer.lock").exists()

    with pytest.raises(RuntimeError), writing(engine) as connection:  # rolled back: must release the lock
        connection.execute(text("UPDATE counter SET n = n + 100"))
        raise RuntimeError("the request failed half-way")

    inside = threading.Lock()
    overlaps: list[bool] = []

    def add_one() -> None:
        for _ in range(20):
            with writing(engine) as connection:
                overlaps.append(not inside.acquire(blocking=False))  # another writer is in here
                try:
                    value = connection.execute(text("SELECT n FROM counter")).scalar_one()
                    time.sleep(0.001)
                    connection.execute(text("UPDATE counter SET n = :n"), {"n": value + 1})
                finally:
                    inside.release()

    threads = [threading.Thread(target=add_one) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert time.monotonic() - started < 10
    assert not any(overlaps)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT n FROM counter")).scalar_one() == 80
    engine.dispose()


def test_a_writer_nested_in_its_own_thread_fails_instead_of_waiting_forever(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    started = time.monotonic()
    with writing(engine) as outer:
        outer.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as second:
            # SQLite's own lock answers (after its busy timeout), not the flock, which would wait
            # for this very thread forever
            second.connection.driver_connection.execute("PRAGMA busy_timeout=200")
            with pytest.raises(OperationalError, match="locked"):
                second.execution_options(write=True).begin()
    assert time.monotonic() - started < 10
    with writing(engine) as again:  # and the lock is free afterwards
        again.execute(text("INSERT INTO t VALUES (2)"))
    engine.dispose()


def test_sqlite_commits_reach_the_disk_before_they_return(tmp_path: Path) -> None:
    """synchronous=FULL: an acknowledged write, or the audit record of a disclosure, survives a
    power loss (under NORMAL the last commits in the log could be lost)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()


def test_a_background_thread_copies_the_log_into_the_database_so_that_commits_do_not(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WalCheckpointer.BACKSTOP_PAGES
    with writing(engine) as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (7)"))

    def in_the_database_file() -> list[tuple[int]]:
        """What a reader of the main file alone sees (immutable: the log is not read)."""
        reader = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            return reader.execute("SELECT n FROM t").fetchall()
        except sqlite3.OperationalError:  # the table is still only in the log
            return []
        except sqlite3.DatabaseError:  # caught mid-checkpoint: an immutable reader takes no lock; look again
            return []
        finally:
            reader.close()

    deadline = time.monotonic() + 10
    while not in_the_database_file() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert in_the_database_file() == [(7,)]  # a 2-page commit would never reach SQLite's own threshold
    with engine.connect() as connection:
        assert connection.execute(text("SELECT n FROM t")).scalar_one() == 7
    engine.dispose()


def test_after_a_bulk_load_the_wal_is_emptied_or_statistics_gathered(app: Flask, client: FlaskClient) -> None:
    database = app.extensions["database"]
    for n in range(20):
        patient = {"resourceType": "Patient", "id": f"bulk-{n}", "name": [{"family": "Rivera", "given": ["Ana"]}]}
        assert client.put(f"/fhir/Patient/bulk-{n}", **fhir_json(patient)).status_code == 201

    if database.dialect.name == "sqlite":
        wal = Path(f"{database.url.database}-wal")
        assert wal.stat().st_size > 0
        after_bulk_load(database)
        assert wal.stat().st_size == 0
    else:
        statistics = text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'search_string'")
        with database.connect() as connection:
            before = connection.execute(statistics).scalar()
        after_bulk_load(database)
        with database.connect() as connection:
            connection.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
            after = connection.execute(statistics).scalar()
        assert after is not None and (before is None or after > before)
