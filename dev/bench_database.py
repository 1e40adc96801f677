"""``python -m dev.bench_database URL [BENCHMARK]``: make sure a PostgreSQL database ``make bench``
uses (the history search's, the 1M fan-out's, the scale-out's) exists, creating it when its
server is reachable. Exits 0 when it is there; otherwise prints one line saying why BENCHMARK
(default: search) is skipped and exits 1."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit, urlunsplit


def ensure_database(url: str) -> str | None:
    """Create the database named by ``url`` if it is missing; None when it exists, else the
    reason it cannot."""
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if parts.scheme not in ("postgres", "postgresql") or not name:
        return f"{url} is not a postgresql://…/DATABASE URL"
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    try:
        connection = psycopg2.connect(maintenance, connect_timeout=3)
    except psycopg2.Error as error:
        return f"PostgreSQL is not reachable at {parts.hostname or 'localhost'} ({error})".strip()
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"bench: created the database {name}")
    except psycopg2.Error as error:
        return f"cannot create the database {name} ({error})".strip()
    finally:
        connection.close()
    return None


def main(argv: list[str]) -> int:
    usage = "usage: python -m dev.bench_database URL [BENCHMARK]"
    reason = ensure_database(argv[0]) if argv else usage
    if reason:
        benchmark = argv[1] if len(argv) > 1 else "search"
        print(f"{benchmark}: skipped, " + " ".join(reason.split()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
