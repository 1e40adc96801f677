"""The bounce receiver as a process, as the Procfile starts it (``python -m bounces``) and as
``herald bounces``: it says where it listens, takes a report, serves its metrics, and stops
cleanly on SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from channels.return_path import return_path
from dev.embedded_redis import free_port
from dev.run import procfile
from models.states import FailureReason, MessageState
from settings import EXIT_INVALID
from tests.bounces.conftest import DOMAIN, SECRET, dsn
from tests.factories import message, stored_message
from tests.support import settled, started_with_output, wait_until

ROOT = Path(__file__).resolve().parents[2]


def process_env(database, redis_url, **settings) -> dict:
    env = dict(
        os.environ,
        DATABASE_URL=database.herald_url,
        REDIS_URL=redis_url,
        BROKER_URL="",
        BOUNCE_DOMAIN=DOMAIN,
        BOUNCE_SECRET=SECRET,
        BOUNCE_SMTP_HOST="127.0.0.1",
        METRICS_HOST="127.0.0.1",
        BOUNCE_SMTP_PORT=str(free_port()),
        LOG_LEVEL="INFO",
        PYTHONPATH=str(ROOT),
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    )
    env.update(settings)
    return env


def stopped(process: subprocess.Popen, reader, signum=signal.SIGTERM) -> int:
    """Send ``signum`` and wait for the exit status (and the last of the output)."""
    os.killpg(process.pid, signum)
    try:
        return process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    finally:
        reader.join(5)


def said(output: list[str], text: str):
    return lambda: next((line for line in output if text in line), None)


def test_the_procfile_process_takes_a_report_serves_metrics_and_stops_on_sigterm(
    db, redis_url, sender, bounce_domain
):
    metrics_port = free_port()
    env = process_env(db, redis_url, BOUNCES_METRICS_PORT=str(metrics_port))
    email = stored_message(sender.sender, provider_id="<1@herald>", state=MessageState.SENT)
    address = return_path(email.id)
    process, output, reader = started_with_output(
        "exec " + procfile(str(ROOT / "Procfile"))["bounces"], shell=True, cwd=ROOT, env=env
    )
    try:
        listening = wait_until(said(output, "receiving delivery reports"), timeout=60)
        port = env["BOUNCE_SMTP_PORT"]
        assert f"bounces+…@{DOMAIN} on 127.0.0.1:{port}" in listening
        assert f"metrics on 127.0.0.1:{metrics_port}" in listening

        import smtplib

        with smtplib.SMTP("127.0.0.1", int(port), timeout=10) as client:
            client.sendmail("<>", [address], dsn(address))
        wait_until(settled(email.id, MessageState.FAILED))
        assert message(email.id).failure_reason == FailureReason.DEAD_ADDRESS

        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            scraped = response.read().decode()
        assert 'herald_bounces_total{outcome="failed"} 1.0' in scraped
        assert 'herald_bounces_total{outcome="dropped_not_dsn"} 0.0' in scraped
    finally:
        exit_code = stopped(process, reader)
    assert exit_code == 0, "".join(output)
    shown = "".join(output)
    assert "bounce receiver stopped" in shown and "Traceback" not in shown, shown
    assert "ion@example.md" not in shown  # neither the address nor the remote server's text
    assert "bounces+" + address[8:20] not in shown  # aiosmtpd's log of each command is off


def test_herald_bounces_without_a_bounce_domain_says_so_and_stops_on_sigint(db, redis_url):
    env = process_env(db, redis_url, BOUNCE_DOMAIN="")
    process, output, reader = started_with_output(
        [sys.executable, "-m", "cli", "bounces"], cwd=ROOT, env=env
    )
    try:
        wait_until(said(output, "BOUNCE_DOMAIN is empty"), timeout=60)
    finally:
        exit_code = stopped(process, reader, signal.SIGINT)
    assert exit_code == 0, "".join(output)
    with pytest.raises(ConnectionRefusedError):  # it listens nowhere
        socket.create_connection(("127.0.0.1", int(env["BOUNCE_SMTP_PORT"])), timeout=5)


def test_a_port_in_use_stops_it_with_a_line_saying_so(db, redis_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = process_env(db, redis_url, BOUNCE_SMTP_PORT=str(port))
        process, output, reader = started_with_output(
            [sys.executable, "-m", "bounces"], cwd=ROOT, env=env
        )
        try:
            exit_code = process.wait(60)
        finally:
            reader.join(5)
    assert exit_code == 1
    assert any(f"cannot listen on 127.0.0.1:{port}" in line for line in output), output


def test_an_invalid_bounce_setting_stops_it_before_it_listens(db, redis_url):
    env = process_env(db, redis_url, BOUNCE_DOMAIN="not a domain", BOUNCE_SMTP_PORT="0")
    result = subprocess.run(
        [sys.executable, "-m", "bounces"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == EXIT_INVALID
    assert result.stderr.splitlines() == [
        "settings: BOUNCE_DOMAIN='not a domain' is not empty or a domain name",
        "settings: BOUNCE_SMTP_PORT='0' is not an integer from 1 to 65,535",
    ]
