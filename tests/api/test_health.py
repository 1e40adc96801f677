"""GET /healthz reports database and broker reachability; with the database down, the API
answers 503 with Retry-After, in the error contract."""

import logging

import pytest
from peewee import SqliteDatabase

from dev.embedded_redis import free_port
from models.db import database, open_database
from tests.factories import email_notification


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


@pytest.fixture(params=["postgresql", "sqlite"])
def database_down(request, db, tmp_path):
    """The app's database replaced by one that cannot be reached: a PostgreSQL on a port where
    nothing listens, or a SQLite file in a directory that does not exist."""
    if request.param == "postgresql":
        down = open_database(f"postgresql://postgres@127.0.0.1:{free_port()}/herald")
    else:
        down = SqliteDatabase(str(tmp_path / "missing" / "herald.db"))
        database.initialize(down)
    try:
        yield down
    finally:
        database.initialize(db)


def test_database_down_is_503_naming_it(client, database_down):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "database": "unreachable",
        "broker": "ok",
    }


def test_a_failed_check_is_logged_with_its_traceback(client, database_down, caplog):
    with caplog.at_level(logging.WARNING, logger="api.health"):
        assert client.get("/healthz").status_code == 503
    (failed,) = [r for r in caplog.records if r.getMessage().startswith("health check failed")]
    assert failed.exc_info is not None


def test_api_calls_answer_503_with_retry_after_while_the_database_is_down(
    client, sender, database_down
):
    calls = [
        client.post("/v1/notifications", json=email_notification(), headers=sender.headers),
        client.get("/v1/notifications", headers=sender.headers),
        client.get("/v1/templates", headers=sender.headers),
    ]
    for response in calls:
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) > 0
        assert response.get_json() == {
            "code": 503,
            "status": "Service Unavailable",
            "message": "The service cannot answer for a moment; retry after Retry-After seconds.",
        }
