"""The worker's and the scheduler's metrics, scraped over HTTP from real processes
(``dramatiq tasks.worker`` with two worker processes, ``python -m scheduler``) once they have
worked, and their ``LOG_FORMAT=json`` output read back as JSON lines; on each database."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dev.embedded_redis import free_port
from models.base import utcnow
from models.message import Message
from models.notification import Notification
from models.states import MessageState
from settings import settings
from tests.factories import email_notification, make_sender
from tests.support import settled, started_with_output, wait_until

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "scrape-token-for-tests"
#: Dramatiq's own lines, before Herald's code sets up logging in a process.
SUPERVISOR = re.compile(r"\[dramatiq\.(MainProcess|ForkProcess\(\d+\))\] \[INFO\] ")


def scrape(port: int, token: str | None = TOKEN) -> dict[tuple[str, tuple], float]:
    """Every sample at ``http://127.0.0.1:port/metrics``: (name, sorted labels) → value."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scraped(port: int, name: str, **labels):
    """A ``wait_until`` condition: the scrape has ``name`` with ``labels`` above 0."""

    def condition():
        try:
            samples = scrape(port)
        except OSError:  # not listening yet
            return None
        return samples if value(samples, name, **labels) > 0 else None

    return condition


def json_lines(lines: list[str]) -> list[dict]:
    """Each line as the JSON object it must be."""
    return [json.loads(line) for line in lines if line.strip()]


def stop(process) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except Exception:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def herald_env(db, redis_url, tmp_path, **extra) -> dict:
    return dict(
        os.environ,
        DATABASE_URL=db.herald_url,
        REDIS_URL=redis_url,
        BROKER_URL="",
        VAR_DIR=str(tmp_path),
        HOST="127.0.0.1",
        METRICS_TOKEN=TOKEN,
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        **extra,
    )


@pytest.mark.e2e
def test_the_worker_serves_its_processes_metrics_and_logs_json_lines_with_the_ids(
    client, sender, db, redis_url, smtp, tmp_path
):
    port = free_port()
    env = herald_env(
        db,
        redis_url,
        tmp_path,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(settings.SMTP_PORT),
        WORKER_METRICS_PORT=str(port),
    )
    command = [sys.executable, "-m", "dramatiq", "tasks.worker", "--processes", "2"]
    worker, output, reader = started_with_output(command + ["--threads", "2"], cwd=ROOT, env=env)
    try:
        posted = client.post(
            "/v1/notifications",
            json=email_notification("ion@example.md", "ana@example.md", "dan@example.md"),
            headers=sender.headers,
        ).get_json()
        ids = [entry["id"] for entry in posted["messages"]]
        for message_id in ids:
            wait_until(settled(message_id, MessageState.SENT), timeout=60)
        labels = {"channel": "email", "outcome": "sent", "reason": ""}
        samples = wait_until(scraped(port, "herald_deliveries_total", **labels), timeout=30)
        wait_until(lambda: value(scrape(port), "herald_deliveries_total", **labels) == 3, 30)
        samples = scrape(port)
        with pytest.raises(urllib.error.HTTPError) as refused:
            scrape(port, token=None)
        assert refused.value.code == 401
    finally:
        stop(worker)
        reader.join(10)

    assert value(samples, "herald_send_duration_seconds_count", channel="email") == 3
    assert value(samples, "herald_send_duration_seconds_sum", channel="email") > 0
    assert value(samples, "herald_accept_to_sent_seconds_count", channel="email") == 3
    inf = value(samples, "herald_accept_to_sent_seconds_bucket", channel="email", le="+Inf")
    assert inf == 3
    dramatiq_labels = {"queue_name": "email", "actor_name": "deliver_email"}
    assert value(samples, "dramatiq_messages_total", **dramatiq_labels) == 3

    # Dramatiq's supervisor writes its own lifecycle lines in its own format (it starts the
    # worker and fork processes before any Herald code runs): every other line is JSON.
    supervisor = [line for line in output if line.startswith("[")]
    assert all(SUPERVISOR.search(line) for line in supervisor), supervisor
    records = json_lines([line for line in output if line not in supervisor])
    assert {"time", "level", "logger", "message"} <= set(records[0])
    sent = {r["message_id"]: r for r in records if r["message"].endswith(": sent")}
    assert set(sent) == set(ids)
    for record in sent.values():
        assert record["notification_id"] == posted["id"]
        assert record["channel"] == "email"
        assert record["attempt"] == 1
        assert record["sender"] == sender.sender.id
    assert not any("ion@example.md" in line or "Vă așteptăm" in line for line in output)


@pytest.mark.e2e
def test_the_scheduler_serves_its_job_runs_leadership_and_sampled_states(
    db, redis_url, queues, tmp_path
):
    acme = make_sender("acme").sender
    notification = Notification.create(sender=acme, content={"subject": "s", "body": "b"})
    Message.create(
        notification=notification,
        sender=acme,
        channel="email",
        destination="a@example.md",
        state=MessageState.QUEUED,
        due_at=utcnow() - timedelta(minutes=10),
    )
    port = free_port()
    env = herald_env(
        db,
        redis_url,
        tmp_path,
        SCHEDULER_METRICS_PORT=str(port),
        REPLAY_INTERVAL_SECONDS="1",
        REPLAY_AFTER_SECONDS="300",
        METRICS_SAMPLE_SECONDS="1",
    )
    scheduler, output, reader = started_with_output(
        [sys.executable, "-m", "scheduler"], cwd=ROOT, env=env
    )
    try:
        labels = {"job": "replay", "item": "items"}
        wait_until(scraped(port, "herald_scheduler_job_items_total", **labels), timeout=60)
        samples = wait_until(scraped(port, "herald_messages", state="queued"), timeout=60)
    finally:
        stop(scheduler)
        reader.join(10)

    assert value(samples, "herald_scheduler_job_items_total", job="replay", item="items") == 1
    assert value(samples, "herald_scheduler_job_runs_total", job="replay", outcome="ok") >= 1
    assert value(samples, "herald_scheduler_job_duration_seconds_count", job="replay") >= 1
    assert value(samples, "herald_scheduler_leader") == 1
    assert value(samples, "herald_messages", state="queued") == 1
    assert value(samples, "herald_messages", state="sending") == 0
    sampled_at = value(samples, "herald_messages_sampled_timestamp_seconds")
    assert abs(sampled_at - utcnow().timestamp()) < 120

    records = json_lines(output)  # every line of the scheduler is a JSON object
    messages = [record["message"] for record in records]
    assert any("scheduler started (leader)" in text for text in messages), messages
    assert any("replay: re-enqueued 1 stuck messages" in text for text in messages), messages
