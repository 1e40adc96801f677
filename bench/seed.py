"""Seed a broadcast's audience fast: N registry contacts, each with one email address and a
subscription to one service. PostgreSQL gets COPY (1,000,000 contacts in well under a minute);
SQLite an ``executemany`` per table. Ids are assigned here (1…N on empty tables), so no row is
read back. Not timed by the benchmarks that use it."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

BATCH = 100_000


def seed_broadcast(count: int, service: str):
    """``count`` contacts subscribed to ``service``; the sender that will broadcast (a new
    one, named "bench")."""
    from models.base import utcnow
    from models.db import database, is_sqlite
    from models.sender import create_sender

    now = utcnow().replace(tzinfo=None).isoformat(sep=" ")
    tables: list[tuple[str, tuple[str, ...], Callable[[int], tuple]]] = [
        (
            "contact",
            ("id", "idnp", "attributes", "created_at", "updated_at"),
            lambda n: (n, fake_idnp(n), "{}", now, now),
        ),
        (
            "contact_channel",
            (
                "id",
                "contact_id",
                "type",
                "address",
                "active",
                "priority",
                "created_at",
                "updated_at",
            ),
            lambda n: (n, n, "email", f"p{n}@example.md", True, 100, now, now),
        ),
        (
            "subscription",
            ("id", "contact_id", "service_name", "created_at"),
            lambda n: (n, n, service, now),
        ),
    ]
    load = _executemany if is_sqlite() else _copy
    with database.atomic():
        for table, columns, row in tables:
            load(table, columns, (row(n) for n in range(1, count + 1)))
    if not is_sqlite():
        for table, _, _ in tables:  # the sequences go on after the seeded ids
            database.execute_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {max(count, 1)})"
            )
        database.execute_sql("ANALYZE")  # as autovacuum would have, for a registry in use
    return create_sender("bench")[0]


def _executemany(table: str, columns: tuple[str, ...], rows: Iterator[tuple]) -> None:
    from models.db import database

    marks = ", ".join("?" * len(columns))
    sql = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({marks})'
    database.cursor().executemany(sql, rows)


def _copy(table: str, columns: tuple[str, ...], rows: Iterator[tuple]) -> None:
    from models.db import database

    cursor = database.cursor()
    while True:
        buffer = io.StringIO()
        written = 0
        for row in rows:
            buffer.write("\t".join(_text(value) for value in row))
            buffer.write("\n")
            written += 1
            if written == BATCH:
                break
        if not written:
            return
        buffer.seek(0)
        cursor.copy_expert(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN', buffer)


def _text(value) -> str:
    if value is True:
        return "t"
    if value is False:
        return "f"
    return str(value)


def fake_idnp(serial: int) -> str:
    digits = f"2{serial:011d}"
    check = sum(int(d) * (7, 3, 1)[i % 3] for i, d in enumerate(digits)) % 10
    return f"{digits}{check}"
