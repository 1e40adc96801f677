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
import time
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


class HeraldRun:
    """One ``herald run`` (python -m cli run) subprocess, its output collected line by line."""

    def __init__(self, env: dict):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.output: list[str] = []
        self.reader = threading.Thread(
            target=lambda: self.output.extend(
                line.decode(errors="replace") for line in self.process.stdout
            ),
            daemon=True,
        )
        self.reader.start()

    def banner_key(self) -> str:
        """The dev API key of the banner, once it is printed."""
        banner = wait_until(
            lambda: [line for line in self.output if "Dev API key:" in line], timeout=90
        )
        return banner[0].split()[-1]

    def line(self, text: str) -> str:
        return next(line for line in self.output if text in line)

    def interrupt(self) -> tuple[int, float]:
        """Ctrl-C: the exit status and how long it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        try:
            exit_code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise
        finally:
            self.reader.join(5)
        return exit_code, time.monotonic() - started


def run_env(tmp_path: Path, broker_url: str = "") -> dict:
    return dict(
        os.environ,
        VAR_DIR=str(tmp_path / "var"),
        PORT=str(free_port()),
        SMTP_PORT=str(free_port()),
        DATABASE_URL="",
        REDIS_URL="",
        BROKER_URL=broker_url,
        WEB_CONCURRENCY="1",
        WORKER_THREADS="2",
        LOG_LEVEL="",
    )


@pytest.mark.e2e
def test_herald_run_delivers_an_email_to_the_outbox(tmp_path, any_broker):
    env = run_env(tmp_path, any_broker.url if any_broker.kind == "rabbitmq" else "")
    port = env["PORT"]
    run = HeraldRun(env)
    output = run.output
    try:
        key = run.banner_key()
        # The banner comes once the API answers.
        assert _healthy(f"http://127.0.0.1:{port}")
        redis_line = run.line("Redis:")
        base = f"http://127.0.0.1:{port}"
        assert f"{base}/docs" in "".join(output)

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
        exit_code, took = run.interrupt()
    assert exit_code == 0, "".join(output[-50:])
    assert took < 10, f"{took:.1f} s to stop"
    shown = "".join(output)
    assert "CRITICAL" not in shown and "Traceback" not in shown, shown[-5000:]
    for name in ("web", "worker", "scheduler"):
        assert any(line.startswith(f"{name:<10}| ") for line in output), name
    assert not any(" apscheduler" in line for line in output), "APScheduler chatter at INFO"
    assert output[-1].strip() == "herald run: stopped"
    # Everything it started is gone: the embedded Redis no longer answers.
    redis_url = redis_line.split()[-1]
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(redis_url, socket_connect_timeout=0.5).ping()


@pytest.mark.e2e
def test_the_dev_key_is_kept_in_var_and_reused_by_the_next_run(tmp_path):
    env = run_env(tmp_path)
    base = f"http://127.0.0.1:{env['PORT']}"
    first = HeraldRun(env)
    try:
        key = first.banner_key()
    finally:
        assert first.interrupt()[0] == 0
    key_file = tmp_path / "var" / "dev-key"
    assert key_file.read_text().strip() == key
    assert key_file.stat().st_mode & 0o777 == 0o600

    second = HeraldRun(env)
    try:
        assert second.banner_key() == key
        # It may do everything the README shows: it is an admin's.
        status, contact = call(
            "POST", f"{base}/v1/contacts", key, {"idnp": "2001234567891", "name": "Ion Popescu"}
        )
        assert status == 201, contact
        assert call("GET", f"{base}/v1/admin/scheduler", key)[0] == 200
        assert "admin key" in second.line("kept in")
    finally:
        assert second.interrupt()[0] == 0


def _healthy(base: str) -> bool:
    try:
        return call("GET", f"{base}/healthz")[0] == 200
    except OSError:
        return False
