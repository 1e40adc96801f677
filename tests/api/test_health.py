"""GET /healthz reports database and broker reachability."""


def test_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_broker_down_is_503_naming_it(app, broker_outage):
    server, _ = broker_outage
    server.stop()
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "database": "ok",
        "broker": "unreachable",
    }
