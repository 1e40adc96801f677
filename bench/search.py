"""History search over N messages in PostgreSQL: p50/p95 of typical searches.

Seeds N messages (default 1,000,000) for 10 senders, one of them holding half, with COPY, then
times the searches a sender makes most — by recipient, by state + channel + date range, by
event — each through the query builder exactly as ``POST /v1/messages/search`` runs it (the
page of 50 and the count for X-Pagination), as the big sender and as an admin, against the
DESIGN.md target for the p95 (bench/targets.py). Uses the PostgreSQL database in
BENCH_DATABASE_URL (its Herald tables are dropped and recreated).

    createdb -h 127.0.0.1 -U postgres bench_search
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_search python -m bench.search
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
DAYS = 90
EVENTS = [f"EVENT_{n:02d}" for n in range(50)]
SERVICES = [f"service-{n:02d}" for n in range(20)]
CHANNELS = ["email"] * 5 + ["sms"] * 2 + ["inapp", "webpush", "webhook", "telegram", "viber"]
STATES = ["sent"] * 16 + ["delivered"] * 2 + ["failed", "queued"]
MESSAGES_PER_NOTIFICATION = 5
PEOPLE_SHARE = 10  # one person per this many messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100, help="timed searches of each kind")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", ""))
    args = parser.parse_args()
    if not args.database.startswith("postgres"):
        parser.error("set BENCH_DATABASE_URL (or --database) to a PostgreSQL database")

    from bench.fanout import reset
    from models import upgrade
    from models.db import open_database

    db = open_database(args.database)
    reset(db)
    upgrade(db)
    started = time.perf_counter()
    senders = seed(db, args.messages)
    print(f"seeded {args.messages:,} messages in {time.perf_counter() - started:.1f} s")
    figures = percentiles(run(senders, args.messages, args.runs))
    print_table(args.messages, figures)
    from bench.harness import save

    save(
        "search",
        {"messages": args.messages, "runs": args.runs, "backend": "postgresql", **figures},
    )


def _v7(moment: datetime) -> uuid.UUID:
    millis = int(moment.timestamp() * 1000)
    high = (millis << 80) | (0x7 << 76) | (random.getrandbits(12) << 64)
    return uuid.UUID(int=high | (0b10 << 62) | random.getrandbits(62))


def _copy(db, model, columns: list[str], rows) -> None:
    """COPY ``rows`` of ``columns`` into ``model``'s table; every other NOT NULL column with
    a constant default (the model's, since peewee's defaults are not the database's) gets it,
    so a column added by a migration does not break the seed."""
    extra = {
        field.column_name: field.db_value(field.default)
        for field in model._meta.sorted_fields
        if field.column_name not in columns
        and not field.null
        and field.default is not None
        and not callable(field.default)
    }
    columns = [*columns, *extra]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([*row, *extra.values()] for row in rows)
    buffer.seek(0)
    cursor = db.connection().cursor()
    table = model._meta.table_name
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer)


def _stamp(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(sep=" ")


def seed(db, count: int) -> list:
    """10 senders (the first with half the messages) and an admin; notifications of five
    messages each, spread over 90 days; then VACUUM ANALYZE, as autovacuum would have."""
    from models.message import Message
    from models.notification import Notification
    from models.sender import create_sender

    senders = [create_sender(f"bench-{n}")[0] for n in range(10)]
    senders.append(create_sender("bench-admin", admin=True)[0])
    rng = random.Random(7)
    notifications = count // MESSAGES_PER_NOTIFICATION
    with db.atomic():
        for start in range(0, notifications, 20_000):
            batch = [
                _notification(rng, senders)
                for _ in range(start, min(start + 20_000, notifications))
            ]
            _copy(db, Notification, NOTIFICATION_COLUMNS, [row for row, _ in batch])
            _copy(db, Message, MESSAGE_COLUMNS, [m for _, ms in batch for m in ms(rng, count)])
    db.execute_sql("VACUUM ANALYZE")
    return senders


NOTIFICATION_COLUMNS = [
    "id", "sender_id", "service_name", "event", "target_id", "target_type", "reference",
    "content", "channel_policy", "is_broadcast", "fanout_state", "fanout_cursor", "urgent",
    "require_action", "inbox_broadcast", "created_at",
]  # fmt: skip
MESSAGE_COLUMNS = [
    "id", "notification_id", "sender_id", "channel", "destination", "recipient_key", "state",
    "failure_reason", "attempts", "resends", "created_at", "updated_at", "sent_at", "subject",
    "body",
]  # fmt: skip


def _notification(rng: random.Random, senders: list):
    sender = senders[0] if rng.random() < 0.5 else rng.choice(senders[1:10])
    created = NOW - timedelta(seconds=rng.uniform(0, DAYS * 86400))
    notification_id = _v7(created)
    event = rng.choice(EVENTS)
    row = [
        notification_id, sender.id, rng.choice(SERVICES), event, f"T-{rng.randrange(10**6)}",
        "account", f"ref-{rng.randrange(10**9)}", '{"body":"x"}', "all", False, "none", 0,
        False, False, False, _stamp(created),
    ]  # fmt: skip

    def messages(rng: random.Random, count: int):
        for _ in range(MESSAGES_PER_NOTIFICATION):
            state = rng.choice(STATES)
            person = f"2{rng.randrange(count // PEOPLE_SHARE):012d}"
            yield [
                _v7(created), notification_id, sender.id, rng.choice(CHANNELS),
                f"p{person}@example.md", person, state,
                "RETRIES_EXHAUSTED" if state == "failed" else None,
                3 if state == "failed" else 1, 0, _stamp(created), _stamp(created),
                None if state in ("failed", "queued") else _stamp(created),
                f"Subject {event}", "A body of a typical length for a short notification.",
            ]  # fmt: skip

    return row, messages


def typical_searches(rng: random.Random, count: int) -> dict:
    """Each kind of search as a function of a random generator: Mambu constraints."""

    def by_recipient():
        person = f"2{rng.randrange(count // PEOPLE_SHARE):012d}"
        return [("RECIPIENT_USER_KEY", "EQUALS", person, None)]

    def by_state_type_dates():
        start = NOW - timedelta(days=rng.randrange(7, DAYS))
        end = start + timedelta(days=7)
        return [
            ("STATE", "EQUALS", "FAILED", None),
            ("TYPE", "EQUALS", rng.choice(["EMAIL", "SMS", "WEB_HOOK"]), None),
            ("CREATION_DATE", "BETWEEN", start.date().isoformat(), end.date().isoformat()),
        ]

    def by_event():
        return [("EVENT", "EQUALS", rng.choice(EVENTS), None)]

    return {"recipient": by_recipient, "state+type+dates": by_state_type_dates, "event": by_event}


def run(senders: list, count: int, runs: int) -> dict[tuple[str, str], list[float]]:
    """Milliseconds per search (count + first page of 50), by (kind, who)."""
    from api.pagination import paginate
    from models.search import search_messages
    from models.search_syntax import mambu_filter
    from settings import settings

    rng = random.Random(11)
    keys = ("filter_selection", "filter_element", "value", "second_value")
    timings: dict[tuple[str, str], list[float]] = {}
    for who, sender in (("sender", senders[0]), ("admin", senders[-1])):
        for kind, make in typical_searches(rng, count).items():
            samples = timings.setdefault((kind, who), [])
            for _ in range(runs + 5):
                constraints = [dict(zip(keys, c, strict=True)) for c in make()]
                started = time.perf_counter()
                query = search_messages(sender, mambu_filter(constraints, sender, now=NOW))
                paginate(query, {"page": 1, "page_size": 50}, settings.SEARCH_COUNT_LIMIT)
                samples.append((time.perf_counter() - started) * 1000)
            del samples[:5]  # warm-up
    return timings


def percentiles(timings: dict[tuple[str, str], list[float]]) -> dict[str, dict[str, float]]:
    """p50 and p95 in ms, each keyed "KIND as WHO" (as saved in docs/bench/results.json)."""
    return {
        "p50_ms": {f"{k} as {w}": statistics.median(s) for (k, w), s in timings.items()},
        "p95_ms": {
            f"{k} as {w}": statistics.quantiles(s, n=20)[-1] for (k, w), s in timings.items()
        },
    }


def print_table(count: int, figures: dict[str, dict[str, float]]) -> None:
    print(f"\nHistory search, {count:,} messages, PostgreSQL (first page of 50 and its count)")
    print(f"{'search':<20}{'as':<8}{'p50 ms':>9}{'p95 ms':>9}")
    worst = max(figures["p95_ms"].values())
    for name, p50 in figures["p50_ms"].items():
        kind, who = name.split(" as ")
        print(f"{kind:<20}{who:<8}{p50:>9.1f}{figures['p95_ms'][name]:>9.1f}")
    from bench.targets import SEARCH_P95_MS

    print(f"worst p95 {worst:.1f} ms: {SEARCH_P95_MS.verdict(worst)}")


if __name__ == "__main__":
    main()
