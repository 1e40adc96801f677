"""``LOG_FORMAT=json``: one JSON object per line, with the ids of the work in hand as fields
(``tasks.logs``); a real in-process worker delivering an email logs its message's ids, and
neither its address nor its body. On each database."""

from __future__ import annotations

import io
import json
import logging

import pytest

from settings import settings
from tasks.logs import ContextFields, log_context, setup_logging
from tests.factories import email_notification
from tests.support import drain


@pytest.fixture
def json_lines(monkeypatch):
    """The JSON lines that Herald's ``tasks`` loggers write during the test."""
    monkeypatch.setattr(settings, "LOG_FORMAT", "json")
    logger, stream = logging.getLogger("tasks"), io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    setup_logging(logger)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_fields_are_those_of_the_innermost_blocks_and_end_with_them(json_lines):
    logger = logging.getLogger("tasks.test")
    with log_context(message_id="m-1", channel="email"):
        with log_context(attempt=2, sender=7, notification_id=None):
            logger.info("inside")
        logger.info("outside")
    logger.info("after")
    inside, outside, after = json_lines()
    assert inside == {
        "time": inside["time"],
        "level": "INFO",
        "logger": "tasks.test",
        "message": "inside",
        "message_id": "m-1",
        "channel": "email",
        "attempt": 2,
        "sender": 7,
    }
    assert "attempt" not in outside and outside["message_id"] == "m-1"
    assert not set(after) & {"message_id", "channel", "attempt", "sender"}


def test_only_the_known_fields_may_be_set():
    with pytest.raises(TypeError, match="destination"), log_context(destination="ion@example.md"):
        pass


def test_setup_is_idempotent_and_text_keeps_a_hosts_format(monkeypatch):
    monkeypatch.setattr(settings, "LOG_FORMAT", "text")
    logger = logging.getLogger("herald.test.setup")
    handler = logging.StreamHandler(io.StringIO())
    host_format = logging.Formatter("[%(name)s] %(message)s")
    handler.setFormatter(host_format)
    logger.addHandler(handler)
    setup_logging(logger)
    setup_logging(logger)
    assert handler.formatter is host_format
    assert sum(isinstance(each, ContextFields) for each in handler.filters) == 1
    logger.removeHandler(handler)


def test_a_delivery_logs_its_ids_and_nothing_of_the_person(
    client, sender, smtp, worker, queues, json_lines
):
    body = email_notification("maria.popescu@example.md")
    posted = client.post("/v1/notifications", json=body, headers=sender.headers).get_json()
    drain(queues, worker)
    message_id = posted["messages"][0]["id"]

    records = json_lines()
    sent = [record for record in records if record["message"] == f"message {message_id}: sent"]
    assert len(sent) == 1, records
    assert sent[0]["message_id"] == message_id
    assert sent[0]["notification_id"] == posted["id"]
    assert sent[0]["channel"] == "email"
    assert sent[0]["attempt"] == 1
    assert sent[0]["sender"] == sender.sender.id
    text = json.dumps(records, ensure_ascii=False)
    assert "maria.popescu" not in text and body["message"]["body"] not in text
