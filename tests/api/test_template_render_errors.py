"""A template is user code: whatever it does with whatever values, rendering it either succeeds
or raises TemplateProblem naming the part and line, which preview and save answer with 400."""

import pytest

from tests.factories import visit_reminder

BROKEN = [
    ("{{ 100 / n }}", 4, 0, "Cannot render: division by zero (line 1)"),
    ("{{ n | number }}", "12.5", "12,5", "'12,5' is not a number (line 1)"),
    ("a\nb {{ n + 1 }}", 1, "abc", "Cannot render: can only concatenate str (not"),
    ("{{ n | date }}", "2026-12-01", "soon", "'soon' is not an ISO date or datetime (line 1)"),
    ("{{ n | round }}", 1.5, "x", "Cannot render: type str doesn't define __round__ method"),
]


def counter(**changes) -> dict:
    """A template showing attribute ``n`` in an SMS body."""
    body = visit_reminder(
        code="counter",
        attributes=[{"name": "n", "required": True, "example": 4}],
        contents=[{"channel": "sms", "language": "ro", "body": "{{ n }}"}],
    )
    body.update(changes)
    return body


@pytest.mark.parametrize(("source", "good", "bad", "problem"), BROKEN)
def test_preview_of_a_template_that_cannot_render_is_400(
    client, sender, source, good, bad, problem
):
    template = counter(
        attributes=[{"name": "n", "example": good}],
        contents=[{"channel": "sms", "language": "ro", "body": source}],
    )
    assert client.post("/v1/templates", json=template, headers=sender.headers).status_code == 201

    response = client.post(
        "/v1/templates/counter/preview",
        json={"channel": "sms", "attributes": {"n": bad}},
        headers=sender.headers,
    )
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == 400 and body["status"] == "Bad Request"
    (message,) = body["errors"]["attributes"]
    assert message.startswith(f"body: {problem}")


@pytest.mark.parametrize(("source", "good", "bad", "problem"), BROKEN)
def test_saving_a_template_whose_examples_cannot_render_is_400(
    client, sender, source, good, bad, problem
):
    template = counter(
        attributes=[{"name": "n", "example": bad}],
        contents=[
            {"channel": "sms", "language": "ro", "body": "ok"},
            {"channel": "email", "language": "ro", "subject": "Nr. {{ n }}", "body": source},
        ],
    )
    response = client.post("/v1/templates", json=template, headers=sender.headers)

    assert response.status_code == 400
    (message,) = response.get_json()["errors"]["contents"]["1"]["body"]
    assert message.startswith(problem)


def test_a_subject_that_cannot_render_is_named(client, sender):
    template = counter(
        contents=[{"channel": "email", "language": "ro", "subject": "{{ 1 / 0 }}", "body": "ok"}]
    )
    response = client.post("/v1/templates", json=template, headers=sender.headers)
    assert response.status_code == 400
    assert response.get_json()["errors"]["contents"]["0"] == {
        "subject": ["Cannot render: division by zero (line 1)"]
    }
