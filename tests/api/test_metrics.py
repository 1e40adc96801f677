"""``GET /metrics`` of the web app: each request counted and timed by method, URL rule (never
the path) and status, the receipts the web process takes in, nothing of a person in any label;
open without an API key unless ``METRICS_TOKEN`` is set. On each database."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from models.receipts import ReceiptStatus
from settings import settings
from tasks.receipts import receipt_for_provider_id
from tests.factories import email_notification, stored_message

NOTIFICATION_RULE = "/v1/notifications/<uuid:notification_id>"


def scrape_text(client, **headers) -> str:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "text/plain"
    return answer.get_data(as_text=True)


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample of ``/metrics``: (name, sorted labels) → value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scrape_text(client))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def routes(samples: dict, name: str = "herald_http_requests_total") -> set[str]:
    return {dict(labels)["route"] for each, labels in samples if each == name}


def test_a_request_moves_its_counter_and_histogram_labelled_with_the_url_rule(client, sender):
    labels = {"method": "GET", "route": NOTIFICATION_RULE, "status": "404"}
    before = scrape(client)
    answer = client.get(f"/v1/notifications/{uuid.uuid4()}", headers=sender.headers)
    assert answer.status_code == 404
    after = scrape(client)

    assert value(after, "herald_http_requests_total", **labels) == (
        value(before, "herald_http_requests_total", **labels) + 1
    )
    count = "herald_http_request_duration_seconds_count"
    assert value(after, count, **labels) == value(before, count, **labels) + 1
    assert value(after, "herald_http_request_duration_seconds_sum", **labels) > 0


def test_label_cardinality_is_bounded_by_the_url_rules(client, sender, app):
    ids = [str(uuid.uuid4()) for _ in range(20)]
    for notification_id in ids:
        client.get(f"/v1/notifications/{notification_id}", headers=sender.headers)
    client.get("/no/such/page/ion@example.md")
    text = scrape_text(client)
    samples = scrape(client)

    rules = {rule.rule for rule in app.url_map.iter_rules()} | {"unmatched"}
    assert routes(samples) <= rules
    assert NOTIFICATION_RULE in routes(samples)
    assert not any(notification_id in text for notification_id in ids)
    assert "ion@example.md" not in text and "/no/such/page" not in text
    assert value(
        samples, "herald_http_requests_total", method="GET", route="unmatched", status="404"
    )


def test_a_refused_request_is_counted_too_and_a_strange_method_is_other(client):
    before = scrape(client)
    assert client.get("/v1/notifications").status_code == 401
    assert client.open("/healthz", method="PROPFIND").status_code == 405
    after = scrape(client)
    refused = {"method": "GET", "route": "/v1/notifications", "status": "401"}
    assert value(after, "herald_http_requests_total", **refused) == (
        value(before, "herald_http_requests_total", **refused) + 1
    )
    strange = {"method": "other", "route": "unmatched", "status": "405"}
    assert value(after, "herald_http_requests_total", **strange) == (
        value(before, "herald_http_requests_total", **strange) + 1
    )


def test_nothing_of_a_person_reaches_the_metrics(client, sender):
    body = email_notification("maria.popescu@example.md")
    assert client.post("/v1/notifications", json=body, headers=sender.headers).status_code == 202
    text = scrape_text(client)
    assert "maria.popescu" not in text and "Programare" not in text
    names = {
        name
        for family in text_string_to_metric_families(text)
        if family.name.startswith("herald_")
        for sample in family.samples
        for name in sample.labels
    }
    assert names <= {"method", "route", "status", "channel", "outcome", "reason", "result", "le"}


def test_metrics_need_no_api_key_and_are_outside_the_v1_guard(client):
    answer = client.get("/metrics", headers={"Authorization": "Bearer not-a-key"})
    assert answer.status_code == 200
    assert "herald_http_requests_total" in answer.get_data(as_text=True)


def test_with_a_metrics_token_only_a_scrape_bearing_it_is_answered(client, monkeypatch):
    monkeypatch.setattr(settings, "METRICS_TOKEN", "s3cret-scrape-token")
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "s3cret-scrape-token"},
    ):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.get_json()["code"] == 401
        assert "herald_" not in refused.get_data(as_text=True)
    assert scrape_text(client, Authorization="Bearer s3cret-scrape-token")


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_receipts_are_counted_by_channel_status_and_result(client, sender, channel):
    message = stored_message(sender.sender, channel=channel, provider_id=uuid.uuid4().hex)

    def receipts(status: str, result: str) -> float:
        labels = {"channel": channel, "status": status, "result": result}
        return value(scrape(client), "herald_receipts_total", **labels)

    before = {
        result: receipts("delivered", result)
        for result in ("applied", "unchanged", "kept_early", "unknown_message")
    }
    receipt_for_provider_id(channel, message.provider_id, ReceiptStatus.DELIVERED)
    receipt_for_provider_id(channel, message.provider_id, ReceiptStatus.DELIVERED)  # a repeat
    receipt_for_provider_id(channel, "not-recorded-yet", ReceiptStatus.DELIVERED)  # kept
    receipt_for_provider_id(channel, "x" * 201, ReceiptStatus.DELIVERED)  # no provider's id

    assert receipts("delivered", "applied") == before["applied"] + 1
    assert receipts("delivered", "unchanged") == before["unchanged"] + 1
    assert receipts("delivered", "kept_early") == before["kept_early"] + 1
    assert receipts("delivered", "unknown_message") == before["unknown_message"] + 1


def test_with_metrics_off_there_is_no_metrics_endpoint(db, queues, monkeypatch):
    from api.app import build_app

    monkeypatch.setattr(settings, "METRICS", False)
    assert build_app().test_client().get("/metrics").status_code == 404
