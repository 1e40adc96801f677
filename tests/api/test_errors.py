"""Every error, from any layer, is JSON in one shape."""

import pytest


def test_unknown_path_is_json_404(client):
    response = client.get("/v1/nowhere")
    assert response.status_code == 404
    assert response.get_json() == {"code": 404, "status": "Not Found", "message": "Not found."}


def test_wrong_method_is_json_405_with_allow(client, sender):
    response = client.delete("/v1/notifications", headers=sender.headers)
    assert response.status_code == 405
    assert response.get_json()["code"] == 405
    assert "POST" in response.headers["Allow"]


def test_unexpected_exception_is_json_500_without_a_traceback(app, monkeypatch, sender):
    import api.notifications

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.notifications, "notification_for", explode)
    app.config["TESTING"] = False  # let Flask handle the exception as in production
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get(
        "/v1/notifications/01a205c0-2cad-77b8-9d6c-5d1f7133d763", headers=sender.headers
    )
    assert response.status_code == 500
    data = response.get_json()
    assert data["code"] == 500
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/v1/notifications/not-a-uuid", "/v1/messages/123"])
def test_malformed_ids_are_404(client, sender, path):
    response = client.get(path, headers=sender.headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == 404
