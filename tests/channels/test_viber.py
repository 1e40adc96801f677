"""Viber: the API and a real worker against a Viber REST Bot API on 127.0.0.1, and the adapter's
status mapping and limits."""

import pytest

from channels import REGISTRY
from channels.base import DeadAddress, PermanentError, Rendered, TransientError
from channels.viber import ViberChannel
from dev.embedded_redis import free_port
from models.states import FailureReason, MessageState
from settings import settings
from tests.fakes.http import Response
from tests.fakes.viber import ViberFake, status
from tests.support import settled, wait_until

TOKEN = "4453b6ac12345678-e02c5f12174805f9-daec9cbb5448c51f"
USER = "01234567890A="


@pytest.fixture
def viber(monkeypatch):
    """A Viber REST API on 127.0.0.1 that Herald is configured to use, with the bot's token."""
    fake = ViberFake(TOKEN).start()
    monkeypatch.setattr(settings, "VIBER_API_URL", fake.url)
    monkeypatch.setattr(settings, "VIBER_AUTH_TOKEN", TOKEN)
    monkeypatch.setattr(settings, "VIBER_SENDER_NAME", "Primăria Chișinău")
    monkeypatch.setattr(settings, "VIBER_SENDER_AVATAR", "")
    yield fake
    REGISTRY["viber"].close()
    fake.stop()


@pytest.fixture
def fast_retries(monkeypatch):
    """Viber retries after tens of milliseconds instead of seconds."""
    monkeypatch.setattr(settings.VIBER, "MIN_BACKOFF_MS", 50)
    monkeypatch.setattr(settings.VIBER, "MAX_BACKOFF_MS", 200)


def notification(*users, **content) -> dict:
    return {
        "recipients": [{"type": "viber", "value": user} for user in users or [USER]],
        "message": {"subject": "Programare confirmată", "body": "Vă așteptăm luni."} | content,
    }


def post(client, sender, body) -> dict:
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def history(client, sender, message_id) -> dict:
    return client.get(f"/v1/messages/{message_id}", headers=sender.headers).get_json()


# --- through the API and a worker ----------------------------------------------------------
def test_a_message_reaches_viber(client, sender, viber, worker, monkeypatch):
    monkeypatch.setattr(settings, "VIBER_SENDER_AVATAR", "https://e.gov.md/avatar.png")
    body = notification(actionUrl="https://e.gov.md/programari/7")
    message_id = post(client, sender, body)["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.SENT))

    (request,) = viber.requests
    assert request.method == "POST"
    assert request.path == "/send_message"
    assert request.headers["X-Viber-Auth-Token"] == TOKEN
    assert request.json() == {
        "receiver": USER,
        "min_api_version": 1,
        "sender": {"name": "Primăria Chișinău", "avatar": "https://e.gov.md/avatar.png"},
        "type": "text",
        "text": "Programare confirmată\n\nVă așteptăm luni.\nhttps://e.gov.md/programari/7",
    }
    assert TOKEN not in request.body.decode()
    status_ = history(client, sender, message_id)
    assert status_["attempts"] == 1
    assert status_["attemptHistory"][0]["providerId"] == "5491000000000000001"
    assert status_["details"] == {"billingStatus": 1}


def test_rate_control_is_retried_then_sent(client, sender, viber, worker, fast_retries):
    viber.script = [status(12, "tooManyRequests")]
    message_id = post(client, sender, notification())["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.SENT))

    assert len(viber.requests) == 2
    status_ = history(client, sender, message_id)
    assert [a["outcome"] for a in status_["attemptHistory"]] == ["transient", "sent"]
    assert "status 12" in status_["attemptHistory"][0]["error"]


def test_a_server_error_is_retried_then_sent(client, sender, viber, worker, fast_retries):
    viber.script = [Response(503, b"Service Unavailable", {"Content-Type": "text/plain"})]
    message_id = post(client, sender, notification())["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.SENT))

    assert len(viber.requests) == 2
    status_ = history(client, sender, message_id)
    assert [a["outcome"] for a in status_["attemptHistory"]] == ["transient", "sent"]
    assert "503" in status_["attemptHistory"][0]["error"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (status(7, "publicAccountBlocked"), "REJECTED_BY_PROVIDER"),
        (status(3, "badData"), "REJECTED_BY_PROVIDER"),
        (status(11, "receiverNoSuitableDevice"), "INVALID_DESTINATION"),
    ],
)
def test_a_permanent_status_fails_at_once_with_its_reason(
    client, sender, viber, worker, fast_retries, answer, reason
):
    viber.script = [answer]
    message_id = post(client, sender, notification())["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.FAILED))

    failed = history(client, sender, message_id)
    assert failed["failureReason"] == reason
    assert failed["attempts"] == 1
    assert [a["outcome"] for a in failed["attemptHistory"]] == ["permanent"]
    expected = f"Viber status {answer.body['status']}: {answer.body['status_message']}"
    assert failed["lastError"] == expected
    assert len(viber.requests) == 1


@pytest.mark.parametrize(
    ("gone", "reported"),
    [("unregistered", "status 5: receiverNotRegistered"), ("unsubscribed", "status 6")],
)
def test_a_receiver_gone_from_viber_is_a_dead_address(
    client, sender, viber, worker, gone, reported
):
    getattr(viber, gone).add("gone-user-1=")
    message_id = post(client, sender, notification("gone-user-1="))["messages"][0]["id"]

    wait_until(settled(message_id, MessageState.FAILED))

    failed = history(client, sender, message_id)
    assert failed["failureReason"] == "DEAD_ADDRESS"
    assert [a["outcome"] for a in failed["attemptHistory"]] == ["dead_address"]
    assert reported in failed["lastError"]


# --- accept time ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", "  ", "has space=", "tab\tid", "a" * 101, 42, ["x"]])
def test_an_invalid_viber_id_is_a_400_naming_the_recipient(client, sender, viber, value):
    body = notification(USER)
    body["recipients"].append({"type": "viber", "value": value})

    response = client.post("/v1/notifications", json=body, headers=sender.headers)

    assert response.status_code == 400
    errors = response.get_json()["errors"]["recipients"]
    assert list(errors) == ["1"]
    assert list(errors["1"]) == ["value"]


def test_a_viber_id_is_stored_trimmed(client, sender, viber):
    posted = post(client, sender, notification(f" {USER} ", "a" * 100))
    assert [m["destination"] for m in posted["messages"]] == [USER, "a" * 100]


@pytest.mark.parametrize(
    ("content", "accepted"),
    [
        ({"body": "a" * 7000}, True),
        ({"body": "a" * 7001}, False),
        ({"subject": "s" * 98, "body": "a" * 6900}, True),  # 98 + blank line + 6900
        ({"subject": "s" * 98, "body": "a" * 6901}, False),
        ({"body": "a" * 6981, "actionUrl": "https://e.gov.md/x"}, True),  # + newline + 18
        ({"body": "a" * 6982, "actionUrl": "https://e.gov.md/x"}, False),
        ({"body": " \n\t "}, False),
    ],
)
def test_content_that_cannot_fit_a_viber_message_is_a_400(client, sender, viber, content, accepted):
    body = notification()
    body["message"] = content

    response = client.post("/v1/notifications", json=body, headers=sender.headers)

    if accepted:
        assert response.status_code == 202
    else:
        assert response.status_code == 400
        assert list(response.get_json()["errors"]["message"]) == ["body"]


# --- the adapter ---------------------------------------------------------------------------
HELLO = Rendered(subject=None, body="Salut")


@pytest.mark.parametrize(
    ("answer", "raised", "reason"),
    [
        (status(5, "receiverNotRegistered"), DeadAddress, "DEAD_ADDRESS"),
        (status(6, "receiverNotSubscribed"), DeadAddress, "DEAD_ADDRESS"),
        (status(7, "publicAccountBlocked"), PermanentError, "REJECTED_BY_PROVIDER"),
        (status(9, "publicAccountSuspended"), PermanentError, "REJECTED_BY_PROVIDER"),
        (status(11, "receiverNoSuitableDevice"), PermanentError, "INVALID_DESTINATION"),
        (status(13, "apiVersionNotSupported"), PermanentError, "REJECTED_BY_PROVIDER"),
        (status(99, "generalError"), PermanentError, "REJECTED_BY_PROVIDER"),
        (status(12, "tooManyRequests"), TransientError, None),
        (status(2, "invalidAuthToken"), TransientError, None),
        (
            Response(200, b"<html>maintenance</html>", {"Content-Type": "text/html"}),
            TransientError,
            None,
        ),
        (Response(500, {}), TransientError, None),
        (Response(429, {}, {"Retry-After": "3"}), TransientError, None),
    ],
)
def test_viber_answers_are_classified(viber, answer, raised, reason):
    viber.script = [answer]
    with pytest.raises(raised) as caught:
        ViberChannel().send(HELLO, USER)
    assert type(caught.value) is raised
    if reason:
        assert caught.value.reason == FailureReason(reason)
    assert TOKEN not in str(caught.value)


def test_a_wrong_token_is_told_by_viber_and_retried(viber, monkeypatch):
    monkeypatch.setattr(settings, "VIBER_AUTH_TOKEN", "not-the-token")
    with pytest.raises(TransientError, match="status 2: invalidAuthToken"):
        ViberChannel().send(HELLO, USER)


def test_no_viber_server_is_transient(viber, monkeypatch):
    monkeypatch.setattr(settings, "VIBER_API_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientError, match="cannot reach 127.0.0.1"):
        ViberChannel().send(HELLO, USER)


def test_a_long_sender_name_is_cut_to_what_viber_shows(viber, monkeypatch):
    monkeypatch.setattr(settings, "VIBER_SENDER_NAME", "Agenția Servicii Publice a Republicii")
    receipt = ViberChannel().send(Rendered(subject="S", body="B"), USER)
    (request,) = viber.requests
    assert request.json()["sender"] == {"name": "Agenția Servicii Publice a R"}
    assert request.json()["text"] == "S\n\nB"
    assert receipt.provider_id == "5491000000000000001"
