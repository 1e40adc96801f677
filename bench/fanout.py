"""Broadcast fan-out: N contacts subscribed to one service, one broadcast to them.

Prints how long resolving, inserting and enqueueing took, against the DESIGN.md target
(bench/targets.py: 100,000 contacts on SQLite, 1,000,000 on PostgreSQL, each in a bounded
time). The chunks run as Herald's workers run them: ``--workers`` processes (default 2, one
per core of the CI machine) claim them in parallel. Starts its own Redis; uses a fresh SQLite
file, or the PostgreSQL database in ``--database``/BENCH_DATABASE_URL (its Herald tables are
dropped and recreated; contacts are seeded with COPY, bench/seed.py).

    python -m bench.fanout --contacts 100000
    python -m bench.fanout --database postgresql://postgres@127.0.0.1:5432/h_x --contacts 1000000
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import tempfile
import time

PHASES = ("plan", "resolve", "insert", "enqueue")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", ""))
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--profile", default="", help="write a cProfile of worker 0 here")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="herald-bench-")
    url = args.database or f"sqlite:///{workdir}/bench.db"

    from dev.embedded_redis import EmbeddedRedis
    from settings import settings

    redis_server = EmbeddedRedis(directory=workdir).start()
    settings.REDIS_URL = redis_server.url
    try:
        figures = run(url, redis_server.url, args.contacts, args.workers, args.profile)
    finally:
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(url, args.contacts, args.workers, figures)
    from bench.harness import save

    backend = url.split(":", 1)[0]
    save(
        "fanout" if backend == "sqlite" else "fanout_postgresql",
        {"contacts": args.contacts, "backend": backend, "workers": args.workers, **figures},
    )


def run(url: str, redis_url: str, count: int, workers: int, profile: str) -> dict[str, float]:
    from bench.seed import seed_broadcast
    from models import upgrade
    from models.db import close_database, open_database
    from tasks import bind_broker

    db = open_database(url)
    reset(db)
    upgrade(db)
    broker = bind_broker(redis_url)
    seeding = time.perf_counter()
    sender = seed_broadcast(count, "water")
    print(f"seeded {count:,} subscribed contacts in {time.perf_counter() - seeding:.1f} s")

    from models.notification import Notification
    from tasks.requests import NotificationCreateSchema
    from tasks.submit import submit_notification

    # Loaded as the API loads a request body, so every field has its default.
    request = NotificationCreateSchema().load(
        {
            "isBroadcast": True,
            "serviceName": "water",
            "channelPolicy": "all",
            "message": {"subject": "Apă", "body": "Apa se oprește mâine între 9 și 12."},
        }
    )
    close_database(db)
    redis_cpu = _redis_cpu(broker.client)
    started = time.perf_counter()
    notification, _ = submit_notification(sender, request)
    notification_id = str(notification.id)
    broker.client.delete("dramatiq:fanout")  # the bench plays the workers
    plan_started = time.perf_counter()
    from tasks.fanout import plan

    plan(Notification.get_by_id(notification_id))
    planned = time.perf_counter() - plan_started
    close_database(db)
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        results = pool.starmap(
            work,
            [
                (url, redis_url, notification_id, n, workers, profile if n == 0 else "")
                for n in range(workers)
            ],
        )
    total = time.perf_counter() - started
    open_database(url)
    assert Notification.get_by_id(notification_id).fanout_state == "done", "fan-out not done"
    queued = broker.client.llen("dramatiq:email")
    assert queued == count, f"{queued} messages queued for {count} contacts"
    figures = {"total": total, "plan": planned, "cpu_redis": _redis_cpu(broker.client) - redis_cpu}
    for name in (*PHASES[1:], "cpu_workers", "cpu_backend"):  # summed over the workers
        figures[name] = sum(result[name] for result in results)
    return figures


def work(url, redis_url, notification_id, number, workers, profile) -> dict[str, float]:
    """One worker process: claim chunks until none is left (as ``fanout_chunk`` jobs would
    reach it), timing each phase."""
    import tasks.fanout as fanout_module
    from models.db import open_database
    from models.fanout_chunk import claimable
    from models.notification import Notification
    from tasks import bind_broker

    open_database(url)
    bind_broker(redis_url)
    timings = dict.fromkeys(PHASES[1:], 0.0)
    fanout_module.resolve = timed(fanout_module.resolve, timings, "resolve")
    fanout_module.store = timed(fanout_module.store, timings, "insert")
    fanout_module.enqueue = timed(fanout_module.enqueue, timings, "enqueue")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    notification = Notification.get_by_id(notification_id)
    backend = _backend_cpu()
    cpu = time.process_time()
    while left := claimable(notification_id):
        # each worker starts at its own place, as jobs spread over workers would
        for chunk in left[number % len(left) :] + left[: number % len(left)]:
            fanout_module.run_chunk(notification, chunk)
    fanout_module.fanout(notification_id)  # the last chunk job's check: done
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    timings["cpu_backend"] = backend()
    timings["cpu_workers"] = time.process_time() - cpu
    return timings


def _backend_cpu():
    """A function giving the CPU seconds the PostgreSQL backend serving this process has used
    since this call (read from /proc: the server is on this machine); 0 on SQLite, whose work
    is this process's own."""
    from models.db import database, is_sqlite

    if is_sqlite():
        return lambda: 0.0
    pid = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    ticks = os.sysconf("SC_CLK_TCK")

    def used() -> float:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    start = used()
    return lambda: used() - start


def _redis_cpu(client) -> float:
    info = client.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def timed(function, timings: dict, name: str):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            timings[name] += time.perf_counter() - started

    return wrapper


def reset(db) -> None:
    from models import ALL_MODELS, MIGRATIONS_TABLE

    cascade = "" if db.__class__.__name__.startswith("Sqlite") else " CASCADE"
    for table in [m._meta.table_name for m in reversed(ALL_MODELS)] + [MIGRATIONS_TABLE]:
        db.execute_sql(f"DROP TABLE IF EXISTS {table}{cascade}")


def print_table(url: str, count: int, workers: int, figures: dict[str, float]) -> None:
    backend = url.split(":", 1)[0]
    total = figures["total"]
    print(f"\nBroadcast fan-out, {count:,} subscribed contacts, {backend}, {workers} workers")
    print(f"{'phase':<16}{'seconds':>10}{'contacts/s':>14}")
    for name in (*PHASES, "total"):
        seconds = figures[name]
        print(f"{name:<16}{seconds:>10.2f}{count / seconds if seconds else 0:>14,.0f}")
    print("(resolve, insert, enqueue: seconds summed over the workers; total: wall clock)")
    print(
        f"CPU seconds: workers {figures['cpu_workers']:.2f}, their database backends "
        f"{figures['cpu_backend']:.2f}, Redis {figures['cpu_redis']:.2f}"
    )
    from bench.targets import fanout_budget

    target = fanout_budget(count, backend)
    verdict = "meets" if total <= target else "misses"
    print(f"target: {count:,} in ≤ {target:.1f} s → {verdict} ({total / target:.2f}× the budget)")


if __name__ == "__main__":
    main()
