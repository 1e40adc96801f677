"""What each scheduler job did last: kept in Redis so the web process can show it."""

from __future__ import annotations

import json
from datetime import datetime

import redis

RUNS_KEY = "herald:scheduler:runs"


def record_run(
    client: redis.Redis,
    name: str,
    started_at: datetime,
    duration: float,
    counts: object,
    next_run: datetime | None,
    error: str | None = None,
) -> None:
    """Keep this run of ``name`` as its latest."""
    run = {
        "job": name,
        "last_run": started_at.isoformat(),
        "duration_seconds": round(duration, 4),
        "counts": counts if isinstance(counts, dict) else {"total": counts},
        "next_run": next_run.isoformat() if next_run else None,
        "error": error,
    }
    client.hset(RUNS_KEY, name, json.dumps(run))


def latest_runs(client: redis.Redis) -> list[dict]:
    """Every job's latest run, by job name."""
    runs = client.hgetall(RUNS_KEY)
    return [json.loads(runs[name]) for name in sorted(runs)]
