"""Requests per minute per sender, counted in the suite's real Redis and shared by every app
(web process): the RateLimit fields on every counted answer, 429 with Retry-After over the
limit, nothing stored for a refused request, per-sender overrides set with the CLI, one
sender's use never counted against another's, and a Redis that cannot be reached lets
requests through and says so in the log."""

from __future__ import annotations

import logging
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tasks.limits
from api.app import build_app
from dev.embedded_redis import free_port
from models.idempotency import IdempotencyRecord
from models.notification import Notification
from models.user_token import mint_user_token
from settings import settings
from tasks.limits import Window, forget_client, window_of
from tests.factories import email_notification

FIELDS = re.compile(r'^"minute";r=(\d+);t=(\d+)$')


@pytest.fixture(autouse=True)
def _fresh_limiter():
    """Each test builds the limiter's client anew (some move Redis away)."""
    forget_client()
    yield
    forget_client()


@pytest.fixture
def limit(monkeypatch):
    """Sets API_RATE_LIMIT_PER_MINUTE for the test."""
    return lambda n: monkeypatch.setattr(settings, "API_RATE_LIMIT_PER_MINUTE", n)


def remaining_and_reset(response) -> tuple[int, int]:
    match = FIELDS.match(response.headers["RateLimit"])
    assert match, response.headers.get("RateLimit")
    return int(match[1]), int(match[2])


def test_every_counted_answer_carries_the_policy_and_what_is_left(client, sender):
    first = client.get("/v1/notifications", headers=sender.headers)
    second = client.get(
        "/v1/notifications/00000000-0000-0000-0000-000000000000", headers=sender.headers
    )

    assert first.status_code == 200 and second.status_code == 404  # errors are counted too
    assert first.headers["RateLimit-Policy"] == '"minute";q=3000;w=60'
    assert second.headers["RateLimit-Policy"] == '"minute";q=3000;w=60'
    (left1, reset1), (left2, reset2) = remaining_and_reset(first), remaining_and_reset(second)
    assert (left1, left2) == (2999, 2998)
    assert 1 <= reset2 <= reset1 <= 60


def test_over_the_limit_is_a_429_in_the_error_contract(client, sender, limit):
    limit(3)
    answers = [client.get("/v1/notifications", headers=sender.headers) for _ in range(5)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert [remaining_and_reset(a)[0] for a in answers] == [2, 1, 0, 0, 0]
    refused = answers[3]
    body = refused.get_json()
    assert body["code"] == 429 and body["status"] == "Too Many Requests"
    assert "3 requests per minute" in body["message"]
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert retry_after == remaining_and_reset(refused)[1]
    assert refused.headers["RateLimit-Policy"] == '"minute";q=3;w=60'


def test_a_refused_post_stores_nothing(client, sender, limit):
    limit(1)
    accepted = client.post("/v1/notifications", json=email_notification(), headers=sender.headers)
    refused = client.post(
        "/v1/notifications",
        json=email_notification("maria@example.md"),
        headers={**sender.headers, "Idempotency-Key": "refused-1"},
    )

    assert accepted.status_code == 202
    assert refused.status_code == 429
    assert Notification.select().count() == 1
    assert IdempotencyRecord.select().count() == 0


def test_one_senders_use_never_counts_against_another(client, sender, other_sender, limit):
    limit(2)
    for _ in range(3):
        client.get("/v1/notifications", headers=sender.headers)
    assert client.get("/v1/notifications", headers=sender.headers).status_code == 429

    other = client.get("/v1/notifications", headers=other_sender.headers)
    assert other.status_code == 200
    assert remaining_and_reset(other)[0] == 1


def test_two_web_processes_share_one_limit(db, queues, sender, limit):
    """Two apps (as two gunicorn workers would be) count in the same Redis window."""
    limit(4)
    one, two = build_app().test_client(), build_app().test_client()
    statuses = [
        (one if n % 2 else two).get("/v1/notifications", headers=sender.headers).status_code
        for n in range(6)
    ]
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_the_window_resets(client, sender, limit, monkeypatch):
    """A one-second window: refused now, accepted again once the window has passed."""
    limit(1)
    monkeypatch.setattr(tasks.limits, "MINUTE", 1)
    client.get("/v1/notifications", headers=sender.headers)
    refused = client.get("/v1/notifications", headers=sender.headers)
    assert refused.status_code in (200, 429)  # the first may have ended a window
    assert refused.headers["RateLimit-Policy"] == '"minute";q=1;w=1'

    from tests.support import wait_until

    wait_until(
        lambda: client.get("/v1/notifications", headers=sender.headers).status_code == 200,
        timeout=10,
    )


def test_a_sender_of_its_own_limit_set_with_the_cli(client, sender, db, herald, monkeypatch):
    # the command on the test's database (herald runs on its own otherwise)
    monkeypatch.setenv("DATABASE_URL", db.herald_url)
    monkeypatch.setattr(settings, "DATABASE_URL", db.herald_url)

    shown = herald("senders", "set-limits", "acme", "--per-minute", "2")
    assert shown.returncode == 0, shown.stderr
    assert "per minute 2," in shown.stdout
    listing = herald("senders", "list").stdout
    assert re.search(r"\bacme\s+no\s+hk_\S+\s+2\s+off\*", listing), listing

    from api.auth import forget_checked_keys

    forget_checked_keys()  # else within SENDER_CACHE_SECONDS
    statuses = [client.get("/v1/notifications", headers=sender.headers).status_code for _ in "abc"]
    assert statuses == [200, 200, 429]
    assert (
        client.get("/v1/notifications", headers=sender.headers).headers["RateLimit-Policy"]
        == '"minute";q=2;w=60'
    )

    off = herald("senders", "set-limits", "acme", "--per-minute", "0")
    assert off.returncode == 0 and "per minute off," in off.stdout
    forget_checked_keys()
    unlimited = client.get("/v1/notifications", headers=sender.headers)
    assert unlimited.status_code == 200 and "RateLimit" not in unlimited.headers

    cleared = herald("senders", "set-limits", "acme", "--per-minute", "default")
    assert cleared.returncode == 0 and "per minute 3000*," in cleared.stdout


def test_set_limits_refuses_what_is_not_a_limit(herald):
    assert herald("senders", "create", "crm").returncode == 0
    nothing = herald("senders", "set-limits", "crm")
    assert nothing.returncode == 2 and "--per-minute" in nothing.stderr
    negative = herald("senders", "set-limits", "crm", "--per-day", "-1")
    assert negative.returncode == 2 and "not a whole number" in negative.stderr
    unknown = herald("senders", "set-limits", "nobody", "--per-day", "5")
    assert unknown.returncode == 1 and "no sender named 'nobody'" in unknown.stderr


def test_not_counted_user_tokens_and_health(client, sender, limit):
    limit(1)
    token, _ = mint_user_token("u-1", sender.sender.id, 3600)
    for _ in range(3):
        inbox = client.get("/v1/inbox", headers={"Authorization": f"Bearer {token}"})
        assert inbox.status_code == 200 and "RateLimit" not in inbox.headers
    assert "RateLimit" not in client.get("/healthz").headers
    unauthenticated = client.get("/v1/notifications")
    assert unauthenticated.status_code == 401 and "RateLimit" not in unauthenticated.headers
    assert client.get("/v1/notifications", headers=sender.headers).status_code == 200


def test_redis_unreachable_lets_requests_through_and_logs(
    client, sender, limit, monkeypatch, caplog
):
    limit(1)
    monkeypatch.setattr(settings, "REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.WARNING, logger="tasks.limits"):
        statuses = [
            client.get("/v1/notifications", headers=sender.headers).status_code for _ in "abc"
        ]
    assert statuses == [200, 200, 200]
    warnings = [r.getMessage() for r in caplog.records if r.name == "tasks.limits"]
    assert len(warnings) == 1  # once, not once per request
    assert warnings[0].startswith("rate limits not enforced: Redis unreachable")


@given(now=st.floats(0, 2**40, allow_nan=False), seconds=st.integers(1, 86400))
def test_the_window_arithmetic(now, seconds):
    number, reset = window_of(now, seconds)
    assert number * seconds <= now < (number + 1) * seconds
    assert 1 <= reset <= seconds
    assert now + reset >= (number + 1) * seconds - 1e-6  # no retry inside this window


@given(limit=st.integers(1, 10**9), used=st.integers(1, 10**10))
def test_remaining_is_never_negative(limit, used):
    window = Window(limit, 60, used, 30)
    assert window.remaining >= 0
    assert window.remaining == max(0, limit - used)
    assert not window.exceeded or window.remaining == 0


def test_a_hung_redis_costs_a_request_only_the_short_timeout(
    client, sender, limit, monkeypatch, caplog
):
    """A server that accepts connections and never answers: the limiter gives up after
    RATE_LIMIT_TIMEOUT_SECONDS (without it this request would wait forever) and lets it by."""
    import socket

    limit(1)
    hung = socket.create_server(("127.0.0.1", 0))
    try:
        monkeypatch.setattr(settings, "REDIS_URL", f"redis://127.0.0.1:{hung.getsockname()[1]}/0")
        monkeypatch.setattr(settings, "RATE_LIMIT_TIMEOUT_SECONDS", 0.05)
        with caplog.at_level(logging.WARNING, logger="tasks.limits"):
            answers = [client.get("/v1/notifications", headers=sender.headers) for _ in "ab"]
        assert [a.status_code for a in answers] == [200, 200]
        assert "RateLimit" not in answers[0].headers
        assert any("Timeout" in r.getMessage() for r in caplog.records if r.name == "tasks.limits")
    finally:
        hung.close()
