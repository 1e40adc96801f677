"""Schemathesis over Herald's own OpenAPI document: cases generated from every operation's
schema (examples, coverage and fuzzing phases; valid and invalid input) are sent to the app
with a key holding every grant, on both databases. No answer may be a 5xx, and every answer
must match the schema the document gives for its status (the error contract for errors).

Bounded and deterministic for CI: ``MAX_EXAMPLES`` per operation, ``derandomize``."""

from __future__ import annotations

import json

import flask
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import build_app
from models.sender import PERMISSIONS
from models.user_token import mint_user_token
from tests.factories import make_sender

#: Generated cases per operation and phase: about 4,500 requests per database, under a minute.
MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance]


def served_document() -> dict:
    """The OpenAPI document as the app serves it, read from an app that connects to nothing
    (this runs at collection, before any database or broker is bound)."""
    app = build_app()
    api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    with app.app_context():
        return json.loads(flask.json.dumps(api.spec.to_dict()))


#: Requests go to each test's own app (``live``).
schema = schemathesis.openapi.from_dict(served_document())


@pytest.fixture
def live(app):
    """The test's app answering as in production: an exception is a 500, not raised."""
    app.config["TESTING"] = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


@pytest.fixture
def every_grant(db):
    return make_sender("schemathesis", permissions=PERMISSIONS)


def credentials(path: str, sender) -> dict[str, str]:
    """The sender's key, or for a user's inbox a user token minted with it."""
    if path.startswith("/v1/inbox") and not path.startswith("/v1/inbox/tokens"):
        token, _ = mint_user_token("u-1", sender.sender.id, 3600)
        return {"Authorization": f"Bearer {token}"}
    return sender.headers


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error(case, live, every_grant):
    headers = credentials(case.path, every_grant)
    case.call_and_validate(app=live, headers=headers, checks=CHECKS)
