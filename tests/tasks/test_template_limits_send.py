"""At send time a render past a bound fails its message with TEMPLATE_ERROR in one attempt,
stores nothing big, and leaves the worker free for the next message; a legitimate large
template is sent whole. Through the API, a real worker and a real SMTP server."""

import pytest

from models.message import Attempt
from models.states import MessageState
from tests.api.test_template_limits import BY_ATTRIBUTES, ROWS, counter, statement
from tests.factories import message
from tests.support import running_worker, settled, wait_until

SENT_CASES = [
    "repetition",
    "power",
    "center filter",
    "doubling",
    "nested loops",
    "output kept in a block",
    "filter block",
    "recursion",
]


def send(client, sender, template: str, address: str, attributes: dict) -> str:
    response = client.post(
        "/v1/notifications",
        json={
            "template": template,
            "recipients": [{"type": "email", "value": address, "attributes": attributes}],
        },
        headers=sender.headers,
    )
    assert response.status_code == 202, response.get_json()
    return response.get_json()["messages"][0]["id"]


def stored_text(message_id) -> int:
    """How many characters the message and its attempts keep."""
    row = message(message_id)
    texts = [row.subject, row.body, row.last_error, str(row.details or "")]
    texts += [attempt.error for attempt in Attempt.select().where(Attempt.message == row.id)]
    return sum(len(text or "") for text in texts)


@pytest.mark.parametrize("case", SENT_CASES)
def test_a_send_past_a_bound_fails_at_once_and_the_worker_goes_on(
    client, sender, smtp, queues, case
):
    source, good, bad, problem = BY_ATTRIBUTES[case]
    saved = client.post("/v1/templates", json=counter(source, good), headers=sender.headers)
    assert saved.status_code == 201, saved.get_json()
    hostile = send(client, sender, "counter", "bad@example.md", {"x": "ab", "n": bad})
    following = send(client, sender, "counter", "good@example.md", {"x": "ab", "n": good})

    with running_worker(queues, threads=1):  # one thread: the next message waits for it
        wait_until(settled(hostile, MessageState.FAILED), timeout=30)
        (mail,) = smtp.wait_for(1, timeout=30)
        wait_until(settled(following, MessageState.SENT), timeout=30)

    failed = message(hostile)
    assert failed.failure_reason == "TEMPLATE_ERROR"
    assert failed.last_error.startswith(f"body: {problem}")
    assert failed.attempts == 1
    assert Attempt.select().where(Attempt.message == failed.id).count() == 1
    assert stored_text(hostile) < 500
    assert mail.rcpt_tos == ["good@example.md"]


def test_a_legitimate_large_template_is_sent_whole(client, sender, smtp, worker):
    assert client.post("/v1/templates", json=statement(), headers=sender.headers).status_code == 201

    message_id = send(client, sender, "statement", "ion@example.md", {"rows": ROWS})

    (mail,) = smtp.wait_for(1, timeout=30)
    wait_until(settled(message_id, MessageState.SENT))
    html = mail.email.get_body(("html",)).get_content()
    assert html.count("<tr") == 50
    assert "<td>50</td><td>Ion Popescu 49</td><td>60.490,5</td>" in html
    text = mail.email.get_body(("plain",)).get_content()
    assert "50. Ion Popescu 49: 60.490,5" in text
