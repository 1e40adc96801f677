"""`herald run` (what `make run` starts) as a newcomer uses it: embedded Redis and database,
the mail catcher, web, worker and scheduler processes; one email from curl to the outbox. Also
with RabbitMQ as the broker (BROKER_URL=amqp://…, when TEST_RABBITMQ_URL is set): the embedded
Redis then serves only locks and rate limits."""

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import redis

from dev.embedded_redis import free_port
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]


def call(method: str, url: str, key: str | None = None, body: dict | None = None):
    request = urllib.request.Request(
        url, method=method, data=json.dumps(body).encode() if body else None
    )
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.e2e
def test_herald_run_delivers_an_email_to_the_outbox(tmp_path, any_broker):
    port, smtp_port = free_port(), free_port()
    env = dict(
        os.environ,
        VAR_DIR=str(tmp_path / "var"),
        PORT=str(port),
        SMTP_PORT=str(smtp_port),
        DATABASE_URL="",
        REDIS_URL="",
        BROKER_URL=any_broker.url if any_broker.kind == "rabbitmq" else "",
        WEB_CONCURRENCY="1",
        WORKER_THREADS="2",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output: list[str] = []
    reader = threading.Thread(
        target=lambda: output.extend(line.decode(errors="replace") for line in process.stdout),
        daemon=True,
    )
    reader.start()
    try:
        banner = wait_until(lambda: [line for line in output if "Dev API key:" in line], timeout=60)
        key = banner[0].split()[-1]
        redis_line = next(line for line in output if "Redis:" in line)
        base = f"http://127.0.0.1:{port}"
        assert f"{base}/docs" in "".join(output)
        wait_until(lambda: _healthy(base), timeout=60)

        status, posted = call(
            "POST",
            f"{base}/v1/notifications",
            key,
            {
                "recipients": [{"type": "email", "value": "ion@example.md"}],
                "message": {"subject": "Bun venit", "body": "Primul mesaj"},
            },
        )
        assert status == 202, posted

        outbox = tmp_path / "var" / "outbox"
        (eml,) = wait_until(lambda: list(outbox.glob("*.eml")), timeout=30)
        email = message_from_bytes(eml.read_bytes(), policy=policy.default)
        assert email["To"] == "ion@example.md"
        assert email["Subject"] == "Bun venit"
        assert email.get_content().strip() == "Primul mesaj"

        message_url = f"{base}/v1/notifications/{posted['id']}"
        wait_until(lambda: call("GET", message_url, key)[1]["messages"][0]["state"] == "sent")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            exit_code = process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        reader.join(5)
    assert exit_code == 0, "".join(output[-50:])
    # Everything it started is gone: the embedded Redis no longer answers.
    redis_url = redis_line.split()[-1]
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(redis_url, socket_connect_timeout=0.5).ping()


def _healthy(base: str) -> bool:
    try:
        return call("GET", f"{base}/healthz")[0] == 200
    except OSError:
        return False
