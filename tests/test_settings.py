"""Every setting has a kind (type and allowed values); a value outside it stops every process
at start-up, naming the setting, the value and what is allowed."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dev.embedded_redis import free_port
from settings import (
    EXIT_INVALID,
    SETTINGS,
    ChannelSettings,
    InvalidSetting,
    Settings,
    rate_window,
    settings,
)

ROOT = Path(__file__).resolve().parents[1]


def test_every_default_is_allowed_by_its_kind():
    refused = [item.name for item in SETTINGS.values() if not item.kind.valid(item.default)]
    assert refused == []


@pytest.mark.parametrize(
    ("name", "raw", "allowed"),
    [
        ("SCHEDULE_BATCH_SIZE", "0", "an integer from 1 to 10,000"),
        ("PURGE_BATCH_SIZE", "0", "an integer from 1 to 10,000"),
        ("FANOUT_CHUNK_SIZE", "0", "an integer from 1 to 10,000"),
        ("REPLAY_BATCH_SIZE", "1.5", "an integer from 1 to 10,000"),
        ("SMTP_PORT", "70000", "an integer from 1 to 65,535"),
        ("BROKER_TIMEOUT_SECONDS", "0", "a number from 0.1 to 300"),
        ("SENDER_CACHE_SECONDS", "nan", "a number from 0 to 3,600"),
        ("TELEGRAM_RATE_LIMIT_PER_SECOND", "0.333", "0 (no limit) or from 1/60 to 10,000"),
        ("TELEGRAM_RATE_LIMIT_PER_SECOND", "0.01", "0 (no limit) or from 1/60 to 10,000"),
        ("EMAIL_RATE_LIMIT_PER_SECOND", "-1", "0 (no limit) or from 1/60 to 10,000"),
        ("SMTP_TLS", "tls", "one of: none, starttls, ssl"),
        ("SMS_PROVIDER", "carrier-pigeon", "one of: twilio"),
        ("LOG_LEVEL", "verbose", "one of: DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("DATABASE_URL", "mysql://db/herald", "a URL: sqlite://, postgresql://, postgres://"),
        ("DATABASE_URL", "sqlite://", "a URL: sqlite://"),
        ("BROKER_URL", "http://broker", "empty or a URL: redis://, rediss://, unix://, amqp://"),
        ("REDIS_URL", "redis://127.0.0.1:port/0", "empty or a URL: redis://"),
        ("TELEGRAM_API_URL", "ftp://api.telegram.org", "a URL: http://, https://"),
        ("SMS_API_URL", "https://", "a URL: http://, https://"),
        ("VAPID_SUBJECT", "ops@example.md", "a URL: mailto:, https://"),
        ("ALLOW_PRIVATE_URLS", "maybe", "true or false"),
        ("SMS_DEFAULT_REGION", "Moldova", "empty or a region code of two capital letters"),
        ("ATTACHMENT_CONTENT_TYPES", "pdf", "empty or type/subtype, comma-separated"),
        ("WORKER_PROCESSES", "0", "empty or an integer from 1 to 1,024"),
        ("MAIL_FROM", "   ", "non-empty text"),
        (
            "INBOX_FRAME_ANCESTORS",
            "https://portal.gov.md/inbox",
            "empty or http(s) origins (scheme://host[:port], no path), space-separated",
        ),
        (
            "INBOX_FRAME_ANCESTORS",
            "portal.gov.md",
            "empty or http(s) origins (scheme://host[:port], no path), space-separated",
        ),
        (
            "INBOX_FRAME_ANCESTORS",
            "*",
            "empty or http(s) origins (scheme://host[:port], no path), space-separated",
        ),
        (
            "INBOX_FRAME_ANCESTORS",
            "'self'",
            "empty or http(s) origins (scheme://host[:port], no path), space-separated",
        ),
        (
            "INBOX_FRAME_ANCESTORS",
            "https://a.gov.md,https://b.gov.md",
            "empty or http(s) origins (scheme://host[:port], no path), space-separated",
        ),
        (
            "INBOX_FRAME_ANCESTORS",
            "javascript://a.gov.md",
            "empty or http(s) origins (scheme://host[:port], no path), space-separated",
        ),
    ],
)
def test_a_value_outside_its_kind_is_refused_naming_setting_value_and_range(name, raw, allowed):
    with pytest.raises(InvalidSetting) as refused:
        SETTINGS[name].read(raw)
    assert str(refused.value).startswith(f"{name}={raw!r} is not {allowed}")


def test_a_refused_secret_is_not_repeated():
    with pytest.raises(InvalidSetting) as refused:
        SETTINGS["USER_TOKEN_SECRET"].read("too-short")
    assert "too-short" not in str(refused.value)
    assert str(refused.value) == "USER_TOKEN_SECRET='***' is not empty or 32+ characters"


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("SCHEDULE_BATCH_SIZE", " 250 ", 250),
        ("TELEGRAM_RATE_LIMIT_PER_SECOND", "0.2", 0.2),
        ("TELEGRAM_RATE_LIMIT_PER_SECOND", "2.5", 2.5),
        ("TELEGRAM_RATE_LIMIT_PER_SECOND", "1/3", 1 / 3),
        ("TELEGRAM_RATE_LIMIT_PER_SECOND", "0", 0),
        ("SMTP_TLS", "STARTTLS", "starttls"),
        ("LOG_LEVEL", "debug", "DEBUG"),
        ("ALLOW_PRIVATE_URLS", "yes", True),
        ("DATABASE_URL", "postgresql://herald:pw@db:5432/herald", None),
        ("DATABASE_URL", "sqlite:////var/lib/herald/herald.db", None),
        ("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/", None),
        ("REDIS_URL", "unix:///run/redis.sock", None),
        ("VAPID_SUBJECT", "https://example.md/contact", None),
        ("WORKER_PROCESSES", "4", 4),
        ("INBOX_FRAME_ANCESTORS", "https://portal.gov.md http://127.0.0.1:8080", None),
        ("INBOX_FRAME_ANCESTORS", "https://[2001:db8::1]:8443", None),
    ],
)
def test_values_of_their_kind_are_read(name, raw, value):
    assert SETTINGS[name].read(raw) == (raw if value is None else value)


@pytest.mark.parametrize(
    ("rate", "window"), [(0.2, (1, 5)), (2.5, (5, 2)), (30, (30, 1)), (1 / 3, (1, 3))]
)
def test_a_rate_is_whole_sends_per_whole_seconds(rate, window):
    assert rate_window(rate) == window


def test_the_sms_providers_allowed_are_the_adapters_there_are():
    from channels.sms import PROVIDERS

    assert set(SETTINGS["SMS_PROVIDER"].kind.choices) == set(PROVIDERS)


def test_every_channel_has_its_retry_and_rate_settings():
    from channels import REGISTRY

    for channel in REGISTRY.values():
        assert isinstance(settings.channel(channel.settings_prefix), ChannelSettings)
    with pytest.raises(KeyError):
        settings.channel("SMS_FROM")


def test_a_channel_given_some_variables_keeps_its_own_defaults_for_the_others(monkeypatch):
    monkeypatch.setenv("EMAIL_MAX_RETRIES", "3")
    monkeypatch.setenv("TELEGRAM_MIN_BACKOFF_MS", "")

    read = Settings()

    email, telegram = read.EMAIL, read.TELEGRAM
    assert email == ChannelSettings(MAX_RETRIES=3, MIN_BACKOFF_MS=15000)
    assert telegram == ChannelSettings(MAX_RETRIES=6, MIN_BACKOFF_MS=2000, RATE_LIMIT_PER_SECOND=30)
    assert read.value("EMAIL_MAX_RETRIES") == 3


def test_variables_named_as_a_channel_prefix_are_not_settings(monkeypatch):
    monkeypatch.setenv("EMAIL", "someone@example.md")
    monkeypatch.setenv("SMS", "on")
    monkeypatch.setenv("SMS_FROM", "Herald")

    read = Settings()

    email, sms = read.EMAIL, read.SMS
    assert email == Settings.model_fields["EMAIL"].default
    assert sms == Settings.model_fields["SMS"].default
    assert read.SMS_FROM == "Herald"


def test_local_state_defaults_follow_var_dir(monkeypatch):
    monkeypatch.setenv("VAR_DIR", "/srv/herald")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("DOCUMENT_STORE_DIR", raising=False)

    read = Settings()

    assert read.DATABASE_URL == "sqlite:////srv/herald/herald.db"
    assert read.DOCUMENT_STORE_DIR == "/srv/herald/documents"
    assert SETTINGS["DOCUMENT_STORE_DIR"].default == "var/documents"


# --- every process checks them at start-up ---------------------------------------------------
def started(command: list[str], timeout: float = 60, **env: str) -> tuple[int, str]:
    """Run ``command`` from the project root with ``env`` added; its exit status and stderr.
    A process still running after ``timeout`` fails the test (it did not refuse to start)."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"{command} started with a bad setting: {env}")
    return process.returncode, stderr


REFUSED = "settings: SCHEDULE_BATCH_SIZE='0' is not an integer from 1 to 10,000"


def test_the_web_process_refuses_to_start():
    bind = f"127.0.0.1:{free_port()}"
    web = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        bind,
        "--workers",
        "2",
        "api.app:create_app()",
    ]
    code, stderr = started(web, SCHEDULE_BATCH_SIZE="0")
    assert code != 0
    assert REFUSED in stderr.splitlines()


def test_the_worker_refuses_to_start():
    worker = [
        sys.executable,
        "-m",
        "dramatiq",
        "tasks.worker",
        "--processes",
        "1",
        "--threads",
        "1",
    ]
    code, stderr = started(worker, SCHEDULE_BATCH_SIZE="0")
    assert code == EXIT_INVALID
    assert REFUSED in stderr.splitlines()


def test_the_scheduler_refuses_to_start():
    code, stderr = started([sys.executable, "-m", "scheduler"], SCHEDULE_BATCH_SIZE="0")
    assert code == EXIT_INVALID
    assert stderr.strip() == REFUSED


@pytest.mark.parametrize("command", [["settings"], ["senders", "list"], ["db", "upgrade"]])
def test_every_command_refuses_to_start(command):
    code, stderr = started(
        [sys.executable, "-m", "cli", *command], PURGE_BATCH_SIZE="0", SMTP_TLS="tls"
    )
    assert code == EXIT_INVALID
    assert stderr.splitlines() == [
        "settings: SMTP_TLS='tls' is not one of: none, starttls, ssl",
        "settings: PURGE_BATCH_SIZE='0' is not an integer from 1 to 10,000",
    ]
