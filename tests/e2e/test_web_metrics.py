"""The web process as the Procfile starts it (gunicorn, two workers): ``/metrics`` adds up the
requests every worker answered (prometheus-client's multiprocess mode), from a directory
emptied when the server starts. On each database."""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dev.embedded_redis import free_port
from dev.run import procfile
from tests.support import started_with_output, stopped_group, wait_until

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 30


def get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=5) as answer:  # a connection each: any worker
        return answer.status, answer.headers.get("Content-Type", ""), answer.read().decode()


def healthz_count(base: str) -> float:
    _, _, text = get(f"{base}/metrics")
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "herald_http_requests_total" and sample.labels["route"] == "/healthz"
    )


@pytest.mark.e2e
def test_metrics_add_up_every_gunicorn_worker_from_an_emptied_directory(
    database, redis_url, tmp_path
):
    stale = tmp_path / "metrics" / "web" / "counter_424242.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a counter of an earlier run")
    port = free_port()
    env = dict(
        {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        HOME=str(tmp_path),
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="2",
        VAR_DIR=str(tmp_path),
        DATABASE_URL=database.herald_url,
        REDIS_URL=redis_url,
        BROKER_URL="",
        PYTHONPATH=str(ROOT),
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    )
    process, output, reader = started_with_output(
        procfile(str(ROOT / "Procfile"))["web"], shell=True, cwd=ROOT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{base}/healthz"), timeout=60, interval=0.2)
        assert not stale.exists()
        before = healthz_count(base)
        for _ in range(REQUESTS):
            assert get(f"{base}/healthz")[0] == 200
        counts = [healthz_count(base) for _ in range(6)]  # each scrape answered by any worker
        status, content_type, _ = get(f"{base}/metrics")
        workers_files = {path.name for path in (tmp_path / "metrics" / "web").iterdir()}
    finally:
        stopped_group(process, reader)

    assert counts == [before + REQUESTS] * 6, "".join(output[-20:])
    assert status == 200 and content_type.startswith("text/plain")
    assert any(name.startswith("counter_") for name in workers_files)


def _answers(url: str) -> bool:
    try:
        return get(url)[0] == 200
    except OSError:
        return False
