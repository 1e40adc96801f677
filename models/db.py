"""Database binding: one proxy every model uses, bound at start-up from ``DATABASE_URL``."""

from __future__ import annotations

import os
from urllib.parse import urlparse

import peewee
from peewee import Database, DatabaseProxy, SqliteDatabase
from playhouse.db_url import parse as parse_url
from playhouse.pool import PooledPostgresqlDatabase

import settings

database = DatabaseProxy()


def open_database(url: str | None = None) -> Database:
    """Create the database for ``url`` (default: ``DATABASE_URL``) and bind the models to it.

    SQLite runs in WAL mode with a busy timeout so the web, worker and scheduler processes can
    share one file. PostgreSQL connections are pooled per process.
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


def bulk_insert(model, rows: list[dict], page_size: int = 1000) -> None:
    """Insert many rows of ``model`` fast: values converted by the fields, then one
    ``executemany`` (SQLite) or multi-row ``execute_values`` (PostgreSQL), skipping peewee's
    per-value SQL generation, which dominates large inserts. Every row has the same keys
    (field names); call inside a transaction."""
    if not rows:
        return
    fields = [model._meta.fields[name] for name in rows[0]]
    columns = ", ".join(f'"{field.column_name}"' for field in fields)
    table = model._meta.table_name
    values = [tuple(field.db_value(row[field.name]) for field in fields) for row in rows]
    cursor = database.cursor()
    with peewee.__exception_wrapper__:  # driver errors raised as peewee's (IntegrityError, …)
        if is_sqlite():
            marks = ", ".join("?" * len(fields))
            cursor.executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', values)
        else:
            from psycopg2.extras import execute_values

            sql = f'INSERT INTO "{table}" ({columns}) VALUES %s'
            execute_values(cursor, sql, values, page_size=page_size)
