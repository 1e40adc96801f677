"""Database binding: one proxy every model uses, bound at start-up from ``DATABASE_URL``."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import io
import operator
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import peewee
from peewee import Database, DatabaseProxy, SqliteDatabase
from playhouse.db_url import parse as parse_url
from playhouse.pool import PooledPostgresqlDatabase

from models.errors import ModelError
from settings import settings

database = DatabaseProxy()

#: peewee's guard that re-raises driver errors as its own (IntegrityError, …).
_driver_errors_as_peewee: peewee.ExceptionWrapper = (
    peewee.__exception_wrapper__  # type: ignore[attr-defined]  # peewee-stubs omit this attribute
)


def open_database(url: str | None = None) -> Database:
    """Create the database for ``url`` (default: ``DATABASE_URL``) and bind the models to it.

    SQLite runs in WAL mode with a busy timeout so the web, worker and scheduler processes can
    share one file, and with ``secure_delete`` so that what a write replaces or deletes (an
    older version of a row, a purged body) is overwritten with zeros in the file, not left in
    its free space. PostgreSQL connections are pooled per process.
    """
    url = url or settings.DATABASE_URL
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        db = _sqlite(url)
    elif scheme in {"postgres", "postgresql"}:
        params = parse_url(url)
        db = PooledPostgresqlDatabase(
            params.pop("database"),
            max_connections=settings.DATABASE_POOL_SIZE,
            stale_timeout=300,
            timeout=30,
            **params,
        )
    else:
        raise SystemExit(f"DATABASE_URL: unsupported scheme {scheme!r} (use sqlite or postgresql)")
    database.initialize(db)
    return db


def close_database(db: Database) -> None:
    """Close every connection ``db`` holds (a pool's idle and checked-out ones too)."""
    if isinstance(db, PooledPostgresqlDatabase):
        db.close_all()
    else:
        db.close()


def _sqlite(url: str) -> SqliteDatabase:
    path = url.removeprefix("sqlite:///") or ":memory:"
    if path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return SqliteDatabase(
        path,
        pragmas={
            "journal_mode": "wal",
            "busy_timeout": settings.SQLITE_BUSY_TIMEOUT_MS,
            "synchronous": "normal",
            "foreign_keys": 1,
            "secure_delete": 1,
        },
        timeout=settings.SQLITE_BUSY_TIMEOUT_MS / 1000,
    )


def is_sqlite() -> bool:
    return isinstance(database.obj, SqliteDatabase)


def write_transaction():
    """A transaction that takes the write lock up front on SQLite (no upgrade deadlocks)."""
    if is_sqlite():
        return database.atomic("IMMEDIATE")
    return database.atomic()


@contextlib.contextmanager
def queued_writer() -> Iterator[None]:
    """Around a large write transaction on SQLite: wait for the other such writers (of every
    process on this database file) in the kernel, on a lock file beside the database, and not
    in SQLite's busy handler, which polls with sleeps of up to 100 ms — between fan-out chunk
    writers that cost more time than the writes. Nothing on PostgreSQL or in memory."""
    path = database.obj.database if is_sqlite() else None
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}-writer.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def asynchronous_commit() -> None:
    """In a PostgreSQL transaction: its commit returns before its WAL is flushed to disk (see
    the caller for why that is safe there). Nothing on SQLite."""
    if not is_sqlite():
        database.execute_sql("SET LOCAL synchronous_commit TO OFF")


def tuple_rows(query: peewee.SelectBase) -> list[tuple[Any, ...]]:
    """The rows of ``query`` as tuples (peewee-stubs types a model query's rows as model
    instances, even after ``.tuples()``)."""
    return list(query.tuples())


def dict_rows(query: peewee.SelectBase) -> list[dict[str, Any]]:
    """The rows of ``query`` as dicts keyed by column alias (see :func:`tuple_rows`)."""
    return list(query.dicts())


def bulk_insert(model, rows: list[dict], page_size: int = 1000, converted: bool = False) -> None:
    """Insert many rows of ``model`` fast: values converted by the fields (unless already
    ``converted`` to what the database stores: text, numbers, booleans, None), then one
    ``executemany`` (SQLite), or on PostgreSQL a multi-row ``execute_values`` (a ``COPY``
    for converted rows: half the server's time and a third of ours), skipping peewee's
    per-value SQL generation, which dominates large inserts. Every row has the same keys
    (field names); call inside a transaction."""
    if not rows:
        return
    fields = [model._meta.fields[name] for name in rows[0]]
    columns = ", ".join(f'"{field.column_name}"' for field in fields)
    table = model._meta.table_name
    if converted:
        names = operator.itemgetter(*rows[0])
        values = [names(row) for row in rows]
    else:
        values = [tuple(field.db_value(row[field.name]) for field in fields) for row in rows]
    cursor = database.cursor()
    with _driver_errors_as_peewee:
        if is_sqlite():
            marks = ", ".join("?" * len(fields))
            cursor.executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', values)
        elif converted:
            lines = ("\t".join(map(_copy_text, row)) + "\n" for row in values)
            cursor.copy_expert(
                f'COPY "{table}" ({columns}) FROM STDIN', io.StringIO("".join(lines))
            )
        else:
            from psycopg2.extras import execute_values

            sql = f'INSERT INTO "{table}" ({columns}) VALUES %s'
            execute_values(cursor, sql, values, page_size=page_size)


def _copy_text(value) -> str:
    """A value in ``COPY``'s text format."""
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        text = text.replace("\r", "\\r")
    return text


class GroupCommitInterrupted(ModelError, peewee.OperationalError):
    """A write queued for a group commit was not committed because the thread committing its
    batch was interrupted (a time limit, KeyboardInterrupt): the whole batch was rolled back."""


class _Ticket:
    __slots__ = ("work", "done", "result", "error")

    def __init__(self, work):
        self.work, self.done, self.result, self.error = work, False, None, None


class GroupCommit:
    """Small writes from many threads of one process, committed together.

    A thread calling :meth:`run` queues its work, then waits for this process's writer turn;
    whoever gets the turn runs every queued piece of work in one transaction and hands each
    thread its result. Under load, one commit (one SQLite write lock, one PostgreSQL WAL flush)
    serves as many messages as there are threads waiting, instead of one each; alone, a call
    costs what a plain transaction does. Work must be plain SQL on ``database`` (it may run on
    another thread's connection).

    A piece of work that raises fails alone: its caller gets the error, and the rest of the
    batch runs again, without it, in a new transaction. An error of the transaction itself
    (begin, commit) fails every caller. An interrupt (any ``BaseException`` that is not an
    ``Exception``, such as Dramatiq's ``TimeLimitExceeded``) in the committing thread rolls the
    batch back: that thread goes on being interrupted, and every other caller of the batch,
    whether its work had run or not, gets :class:`GroupCommitInterrupted`.
    """

    def __init__(self) -> None:
        self._queue_lock = threading.Lock()
        self._writer = threading.Lock()
        self._queue: list[_Ticket] = []

    def run(self, work):
        """Run ``work`` in a transaction shared with the other threads' queued work; its result.

        Inside a transaction already, the caller's transaction is the batch: ``work`` runs now.
        """
        if database.in_transaction():
            return work()
        ticket = _Ticket(work)
        with self._queue_lock:
            self._queue.append(ticket)
        try:
            with self._writer:
                if not ticket.done:
                    self._commit_queued()
        except BaseException:
            self._withdraw(ticket)
            raise
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def _commit_queued(self) -> None:
        """Take every queued ticket and commit it; each one taken ends done, with its result or
        an error."""
        batch: list[_Ticket] = []
        try:
            with self._queue_lock:
                batch, self._queue = self._queue, []
            pending = batch
            while pending:
                pending = _commit_once(pending)
        except BaseException as interrupt:
            for ticket in batch:
                if not ticket.done:
                    ticket.error = GroupCommitInterrupted(
                        f"not committed: the thread committing it was interrupted "
                        f"({type(interrupt).__name__})"
                    )
            raise
        finally:
            for ticket in batch:
                ticket.done = True

    def _withdraw(self, ticket: _Ticket) -> None:
        """An interrupted caller's ticket leaves the queue if no committer has taken it yet."""
        with self._queue_lock:
            if ticket in self._queue:
                self._queue.remove(ticket)


def _commit_once(batch: list[_Ticket]) -> list[_Ticket]:
    """Run ``batch`` in one transaction and mark its tickets done; if one piece of work raises,
    only that ticket is done (with the error): the others are returned to run again."""
    running = None
    try:
        with write_transaction():
            for running in batch:
                running.result = running.work()
            running = None
    except Exception as error:  # not handled here: handed to the caller(s), who raise it
        if running is not None:
            running.error, running.done = error, True
            return [ticket for ticket in batch if ticket is not running]
        for ticket in batch:
            ticket.error = error
    for ticket in batch:
        ticket.done = True
    return []


#: The process's group commit for per-message state changes (claims and outcomes).
group_commit = GroupCommit()


@functools.lru_cache(maxsize=256)
def _for_postgresql(sql: str) -> str:
    return sql.replace("?", "%s")


def run_sql(sql: str, params=()):
    """Run ``sql``, written with ``?`` markers, on the bound database (PostgreSQL's driver
    gets ``%s``); the cursor. For the worker's per-message statements, whose text is built
    once: peewee's query building cost more CPU than the database did."""
    return database.execute_sql(sql if is_sqlite() else _for_postgresql(sql), params)
