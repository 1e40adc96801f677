"""/v1/templates: store, version, list, preview; sandboxed and validated at save."""

import json

import pytest

from models.base import utcnow
from models.message import Message
from models.notification import Notification
from models.states import MessageState
from models.template import Template, TemplateVersion, current_version
from tests.factories import visit_reminder

VISIT = "2026-12-01T09:00:00+02:00"


def create(client, who, body=None):
    response = client.post("/v1/templates", json=body or visit_reminder(), headers=who.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def preview(client, who, code, **body):
    return client.post(f"/v1/templates/{code}/preview", json=body, headers=who.headers)


def test_create_and_read_by_id_or_code(client, sender):
    created = create(client, sender)

    assert created["code"] == "visit-reminder"
    assert created["version"] == 1
    assert created["defaultLanguage"] == "ro"
    assert created["shared"] is False
    assert {(c["channel"], c["language"]) for c in created["contents"]} == {
        ("email", "ro"),
        ("email", "ru"),
        ("email", "en"),
        ("default", "ro"),
    }
    for key in (created["id"], "visit-reminder"):
        response = client.get(f"/v1/templates/{key}", headers=sender.headers)
        assert response.status_code == 200
        assert response.get_json()["id"] == created["id"]


def test_duplicate_code_is_409(client, sender, other_sender):
    create(client, sender)
    again = client.post("/v1/templates", json=visit_reminder(), headers=sender.headers)
    assert again.status_code == 409
    assert again.get_json()["code"] == 409
    create(client, other_sender)  # codes are per owner


@pytest.mark.parametrize(
    ("language", "expected_subject", "expected_body"),
    [
        ("ro", "Vizită pe 1 decembrie 2026", "Vă vizităm pe 1 decembrie 2026. Ofițer: Ana."),
        ("ru", "Визит 1 декабря 2026 г.", "Мы придём 1 декабря 2026\u202fг.."),  # CLDR: narrow nbsp
        ("en", "Visit on December 1, 2026", "We visit on December 1, 2026."),
    ],
)
def test_preview_in_three_languages(client, sender, language, expected_subject, expected_body):
    create(client, sender)
    attributes = {"visitDate": VISIT, "officerName": "Ana"}
    response = preview(
        client, sender, "visit-reminder", channel="email", language=language, attributes=attributes
    )

    assert response.status_code == 200, response.get_json()
    rendered = response.get_json()
    assert rendered["language"] == language
    assert rendered["subject"] == expected_subject
    assert rendered["body"] == expected_body


def test_preview_falls_back_to_the_default_language_and_default_channel(client, sender):
    create(client, sender)
    email = preview(
        client,
        sender,
        "visit-reminder",
        channel="email",
        language="fr",
        attributes={"visitDate": VISIT},
    )
    inapp = preview(
        client,
        sender,
        "visit-reminder",
        channel="inapp",
        language="ru",
        attributes={"visitDate": VISIT},
    )

    assert email.get_json()["language"] == "ro"
    assert inapp.get_json()["body"] == "Vizită: 01.12.2026"


def test_preview_without_a_language_uses_the_default_language_before_any_other(client, sender):
    create(client, sender, visit_reminder(defaultLanguage="en"))  # the "ro" rows come first
    email = preview(
        client, sender, "visit-reminder", channel="email", attributes={"visitDate": VISIT}
    )
    inapp = preview(
        client, sender, "visit-reminder", channel="inapp", attributes={"visitDate": VISIT}
    )

    assert email.status_code == 200, email.get_json()
    assert (email.get_json()["language"], email.get_json()["subject"]) == (
        "en",
        "Visit on December 1, 2026",
    )
    assert inapp.get_json()["language"] == "ro"  # no English row for inapp: any row serves


def test_html_escapes_attribute_values_and_text_does_not(client, sender):
    create(client, sender)
    attributes = {"visitDate": VISIT, "officerName": "<script>alert(1)</script>"}
    rendered = preview(
        client, sender, "visit-reminder", channel="email", language="ro", attributes=attributes
    ).get_json()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered["html"]
    assert "<script>" not in rendered["html"]
    assert "<script>alert(1)</script>" in rendered["body"]


def test_preview_names_every_missing_required_attribute(client, sender):
    body = visit_reminder()
    body["attributes"].append({"name": "address", "required": True, "example": "str. Mare 1"})
    create(client, sender, body)
    response = preview(
        client, sender, "visit-reminder", channel="email", attributes={"officerName": "Ana"}
    )
    assert response.status_code == 400
    assert response.get_json()["errors"] == {
        "attributes": ["Missing required attributes: visitDate, address."]
    }


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ ''.__class__ }}", "Access to '__class__' is not allowed (line 1)"),
        ("ok\n{{ cycler.__init__.__globals__ }}", "is not allowed (line 2)"),
        ("{{ visitDate['_secret'] }}", "Access to '_secret' is not allowed (line 1)"),
        (
            "line 1\nline 2\n{% if visitDate %}never closed",
            "Syntax error: Unexpected end of template",
        ),
        ("Hello {{ nobody }}", "Undefined attribute: 'nobody' is undefined"),
    ],
)
def test_unsafe_or_broken_templates_are_refused_at_save(client, sender, source, message):
    body = visit_reminder()
    body["contents"][1]["body"] = source
    response = client.post("/v1/templates", json=body, headers=sender.headers)

    assert response.status_code == 400
    assert message in response.get_json()["errors"]["contents"]["1"]["body"][0]
    assert Template.select().count() == 0


def test_a_sandbox_escape_that_slips_past_the_save_check_still_fails_safely(db):
    from templating.engine import TemplateProblem, render_content

    content = {"channel": "sms", "language": "en", "body": "{{ x|attr('__class__') }}"}
    with pytest.raises(TemplateProblem, match="Not allowed"):
        render_content("v", content, {"x": "str"}, "en")


def test_email_content_needs_a_subject(client, sender):
    body = visit_reminder()
    del body["contents"][0]["subject"]
    response = client.post("/v1/templates", json=body, headers=sender.headers)
    assert response.status_code == 400
    assert response.get_json()["errors"]["contents"]["0"] == {
        "subject": ["Required for email recipients."]
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"defaultLanguage": "xx-zz"}, "defaultLanguage"),
        ({"contents": []}, "contents"),
        ({"attributes": [{"name": "has space"}]}, "attributes"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_template_fields(client, sender, change, field):
    response = client.post("/v1/templates", json=visit_reminder(**change), headers=sender.headers)
    assert response.status_code == 400
    assert field in response.get_json()["errors"]


def test_oversized_parts_are_refused(client, sender, monkeypatch):
    from settings import settings

    monkeypatch.setattr(settings, "TEMPLATE_MAX_BYTES", 100)
    body = visit_reminder()
    body["contents"][2]["body"] = "x" * 101
    response = client.post("/v1/templates", json=body, headers=sender.headers)
    assert response.status_code == 400
    assert response.get_json()["errors"]["contents"]["2"]["body"] == ["At most 100 bytes."]


def test_each_change_makes_a_version_and_old_versions_stay(client, sender):
    create(client, sender)
    body = visit_reminder()
    del body["code"]
    body["contents"][2]["body"] = "New text for {{ visitDate | date }}."
    put = client.put("/v1/templates/visit-reminder", json=body, headers=sender.headers)
    patch = client.patch(
        "/v1/templates/visit-reminder", json={"name": "Renamed"}, headers=sender.headers
    )

    assert put.status_code == 200 and put.get_json()["version"] == 2
    assert patch.status_code == 200 and patch.get_json()["version"] == 3
    assert patch.get_json()["name"] == "Renamed"
    versions = client.get("/v1/templates/visit-reminder/versions", headers=sender.headers)
    assert [v["version"] for v in versions.get_json()] == [3, 2, 1]
    assert json.loads(versions.headers["X-Pagination"])["total"] == 3
    first = client.get("/v1/templates/visit-reminder/versions/1", headers=sender.headers).get_json()
    assert first["contents"][2]["body"] == "We visit on {{ visitDate | date }}."
    assert (
        client.get("/v1/templates/visit-reminder/versions/9", headers=sender.headers).status_code
        == 404
    )


def test_patching_attributes_rechecks_the_contents(client, sender):
    create(client, sender)
    response = client.patch(
        "/v1/templates/visit-reminder", json={"attributes": []}, headers=sender.headers
    )
    assert response.status_code == 400
    assert "visitDate" in json.dumps(response.get_json()["errors"])
    assert current_version(Template.get()).version == 1


def test_list_filters_and_paginates(client, sender):
    create(client, sender)
    create(
        client,
        sender,
        visit_reminder(
            code="arrears",
            category="finance",
            contents=[{"channel": "inapp", "language": "en", "body": "You owe {{ visitDate }}"}],
        ),
    )

    def codes(query):
        response = client.get(f"/v1/templates?{query}", headers=sender.headers)
        assert response.status_code == 200
        return [t["code"] for t in response.get_json()]

    assert codes("") == ["arrears", "visit-reminder"]
    assert codes("category=finance") == ["arrears"]
    assert codes("channel=inapp") == ["arrears"]
    assert codes("language=ru") == ["visit-reminder"]
    assert codes("text=arrea") == ["arrears"]
    assert codes("pageSize=1&page=2") == ["visit-reminder"]
    assert client.get("/v1/templates?pageSize=0", headers=sender.headers).status_code == 400


def test_templates_are_private_unless_an_admin_owns_them(client, sender, other_sender, admin):
    create(client, sender)
    shared = create(client, admin, visit_reminder(code="shared-notice"))

    assert (
        client.get("/v1/templates/visit-reminder", headers=other_sender.headers).status_code == 404
    )
    assert (
        client.get("/v1/templates/shared-notice", headers=other_sender.headers).get_json()["shared"]
        is True
    )
    assert shared["shared"] is True
    body = visit_reminder()
    del body["code"]
    assert (
        client.put(
            "/v1/templates/shared-notice", json=body, headers=other_sender.headers
        ).status_code
        == 403
    )
    assert (
        client.delete("/v1/templates/shared-notice", headers=other_sender.headers).status_code
        == 403
    )
    assert (
        client.put("/v1/templates/visit-reminder", json=body, headers=admin.headers).status_code
        == 200
    )


def test_delete_is_soft_and_refused_while_scheduled_notifications_use_it(client, sender):
    created = create(client, sender)
    version = TemplateVersion.get()
    notification = Notification.create(sender=sender.sender, content={}, template_version=version)
    scheduled = Message.create(
        notification=notification,
        sender=sender.sender,
        channel="email",
        destination="a@example.md",
        state=MessageState.SCHEDULED,
        due_at=utcnow(),
    )

    refused = client.delete("/v1/templates/visit-reminder", headers=sender.headers)
    assert refused.status_code == 409

    scheduled.state = MessageState.SENT
    scheduled.save()
    assert client.delete("/v1/templates/visit-reminder", headers=sender.headers).status_code == 204
    assert client.get(f"/v1/templates/{created['id']}", headers=sender.headers).status_code == 404
    assert Template.get_by_id(created["id"]).deleted is True
    assert TemplateVersion.select().count() == 1  # kept for what was sent


def test_sms_content_must_fit_the_segment_limit_with_typical_values(client, sender, monkeypatch):
    from settings import settings

    monkeypatch.setattr(settings, "SMS_MAX_SEGMENTS", 2)
    body = visit_reminder(code="sms-visit")
    body["attributes"].append({"name": "note", "example": "x" * 300})
    body["contents"] = [
        {"channel": "sms", "language": "ro", "body": "Vizită {{ visitDate | date }}. {{ note }}"}
    ]
    response = client.post("/v1/templates", json=body, headers=sender.headers)

    assert response.status_code == 400
    (problem,) = response.get_json()["errors"]["contents"]["0"]["body"]
    assert "segments" in problem
    body["attributes"][-1]["example"] = "scurt"
    assert client.post("/v1/templates", json=body, headers=sender.headers).status_code == 201


def test_date_and_number_filters_need_no_example_and_format_the_values_sent(client, sender):
    body = {
        "code": "payment-due",
        "name": "Payment due",
        "defaultLanguage": "ro",
        "attributes": [{"name": "dueAt", "required": True}, {"name": "amount", "required": True}],
        "contents": [
            {
                "channel": "default",
                "language": "ro",
                "body": "Plătiți {{ amount | number }} lei până la {{ dueAt | datetime }}.",
            }
        ],
    }
    create(client, sender, body)

    sent = {"dueAt": VISIT, "amount": "1500.5"}
    shown = preview(client, sender, "payment-due", channel="sms", attributes=sent)
    assert shown.status_code == 200, shown.get_json()
    assert "1.500,5 lei" in shown.get_json()["body"]
    assert "2026" in shown.get_json()["body"]

    wrong = {"dueAt": "soon", "amount": "1"}
    wrong = preview(client, sender, "payment-due", channel="sms", attributes=wrong)
    assert wrong.status_code == 400
    assert "'soon' is not an ISO date or datetime" in json.dumps(wrong.get_json())


def test_a_declared_example_is_checked_against_the_filters(client, sender):
    body = visit_reminder()
    body["attributes"].append({"name": "dueAt", "example": "next week"})
    body["contents"][0]["body"] += " {{ dueAt | date }}"
    response = client.post("/v1/templates", json=body, headers=sender.headers)
    assert response.status_code == 400
    assert "'next week' is not an ISO date or datetime" in json.dumps(response.get_json())
