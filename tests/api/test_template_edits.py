"""Editing templates: PATCH checks what it changes against what is stored, every version has an
ETag that ``If-Match`` guards, and edits at the same moment become consecutive versions."""

import threading

from models.template import Template, TemplateVersion
from tests.factories import visit_reminder


def create(client, who, body=None):
    response = client.post("/v1/templates", json=body or visit_reminder(), headers=who.headers)
    assert response.status_code == 201, response.get_json()
    return response


def replacement(**changes) -> dict:
    body = visit_reminder(**changes)
    del body["code"]
    return body


def test_patching_only_the_contents_checks_them_against_the_stored_attributes(client, sender):
    create(client, sender)
    contents = [{"channel": "sms", "language": "ro", "body": "Vizită {{ visitDate | date }}"}]
    response = client.patch(
        "/v1/templates/visit-reminder", json={"contents": contents}, headers=sender.headers
    )

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["version"] == 2
    assert response.get_json()["contents"] == contents
    assert [a["name"] for a in response.get_json()["attributes"]] == ["visitDate", "officerName"]


def test_patched_contents_that_use_an_undeclared_attribute_are_refused(client, sender):
    create(client, sender)
    contents = [{"channel": "sms", "language": "ro", "body": "Vizită {{ nobody }}"}]
    response = client.patch(
        "/v1/templates/visit-reminder", json={"contents": contents}, headers=sender.headers
    )

    assert response.status_code == 400
    assert "'nobody' is undefined" in response.get_json()["errors"]["contents"]["0"]["body"][0]
    assert Template.get().current_version == 1


def test_patching_attributes_and_contents_together_checks_them_together(client, sender):
    create(client, sender)
    change = {
        "attributes": [{"name": "place", "example": "Chișinău"}],
        "contents": [{"channel": "sms", "language": "ro", "body": "Vizită la {{ place }}"}],
    }
    response = client.patch("/v1/templates/visit-reminder", json=change, headers=sender.headers)
    assert response.status_code == 200, response.get_json()


def test_every_read_and_write_carries_the_versions_etag(client, sender):
    created = create(client, sender)
    read = client.get("/v1/templates/visit-reminder", headers=sender.headers)
    put = client.put("/v1/templates/visit-reminder", json=replacement(), headers=sender.headers)
    patch = client.patch(
        "/v1/templates/visit-reminder", json={"name": "Renamed"}, headers=sender.headers
    )

    assert created.headers["ETag"] == read.headers["ETag"]
    assert len({read.headers["ETag"], put.headers["ETag"], patch.headers["ETag"]}) == 3
    assert (
        patch.headers["ETag"]
        == client.get("/v1/templates/visit-reminder", headers=sender.headers).headers["ETag"]
    )


def test_a_read_with_the_current_etag_is_not_modified(client, sender):
    etag = create(client, sender).headers["ETag"]
    again = client.get(
        "/v1/templates/visit-reminder", headers={**sender.headers, "If-None-Match": etag}
    )
    assert again.status_code == 304


def test_if_match_with_a_stale_etag_is_412_and_changes_nothing(client, sender):
    stale = create(client, sender).headers["ETag"]
    client.patch("/v1/templates/visit-reminder", json={"name": "First"}, headers=sender.headers)

    guarded = {**sender.headers, "If-Match": stale}
    put = client.put("/v1/templates/visit-reminder", json=replacement(), headers=guarded)
    patch = client.patch("/v1/templates/visit-reminder", json={"name": "Lost"}, headers=guarded)

    for response in (put, patch):
        assert response.status_code == 412
        body = response.get_json()
        assert body["code"] == 412 and body["status"] == "Precondition Failed"
        assert "If-Match" in body["message"]
    assert Template.get().name == "First"
    assert TemplateVersion.select().count() == 2


def test_if_match_with_the_current_etag_makes_the_next_version(client, sender):
    create(client, sender)
    current = client.get("/v1/templates/visit-reminder", headers=sender.headers).headers["ETag"]
    guarded = {**sender.headers, "If-Match": current}

    response = client.patch("/v1/templates/visit-reminder", json={"name": "New"}, headers=guarded)
    assert response.status_code == 200
    assert response.get_json()["version"] == 2
    star = client.put(
        "/v1/templates/visit-reminder",
        json=replacement(),
        headers={**sender.headers, "If-Match": "*"},
    )
    assert star.status_code == 200 and star.get_json()["version"] == 3


def at_once(client, calls) -> list:
    """Run each ``call(client)`` on a thread of its own, all released at the same instant."""
    start = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        start.wait()
        try:
            results[index] = call(client.application.test_client())
        except Exception as error:  # the app under test propagates its errors when testing
            results[index] = error

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_edits_become_consecutive_versions(client, sender):
    create(client, sender)
    rounds = 15

    def put(number):
        body = replacement(name=f"put {number}")
        body["contents"][2]["body"] = f"Round {number}: {{{{ visitDate | date }}}}."
        return lambda c: c.put("/v1/templates/visit-reminder", json=body, headers=sender.headers)

    def patch(name):
        return lambda c: c.patch(
            "/v1/templates/visit-reminder", json={"name": name}, headers=sender.headers
        )

    versions, patched = [], []
    for number in range(rounds):
        responses = at_once(client, [put(number), patch(f"patch {number}")])
        assert [getattr(r, "status_code", r) for r in responses] == [200, 200]
        versions += [r.get_json()["version"] for r in responses]
        patched.append(responses[1].get_json()["version"])

    assert sorted(versions) == list(range(2, 2 * rounds + 2))
    stored = {v.version: v for v in TemplateVersion.select()}
    assert sorted(stored) == list(range(1, 2 * rounds + 2))
    for version in patched:  # a PATCH keeps the contents of the version it followed
        assert stored[version].contents == stored[version - 1].contents
    assert Template.get().current_version == 2 * rounds + 1


def test_concurrent_edits_with_the_same_etag_one_wins_the_other_is_412(client, sender):
    create(client, sender)
    for number in range(10):
        etag = client.get("/v1/templates/visit-reminder", headers=sender.headers).headers["ETag"]
        guarded = {**sender.headers, "If-Match": etag}

        def put(c, number=number, guarded=guarded):
            body = replacement(name=f"round {number}")
            return c.put("/v1/templates/visit-reminder", json=body, headers=guarded)

        responses = at_once(client, [put, put])
        assert sorted(getattr(r, "status_code", 500) for r in responses) == [200, 412], responses
    assert Template.get().current_version == 11
