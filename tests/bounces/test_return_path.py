"""The VERP return path's token: it names its message, only Herald can make one, and it fits
an email local part whatever an MTA does to its case."""

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from channels.return_path import (
    LOCAL_PREFIX,
    TOKEN_LENGTH,
    message_id_of,
    return_path,
    token_for,
    token_in,
)
from models import server_secret
from models.server_secret import ServerSecret
from settings import settings
from tests.bounces.conftest import DOMAIN, SECRET

ROOT = Path(__file__).resolve().parents[2]
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
MESSAGE_IDS = st.uuids()
#: ``signed`` only sets two settings: the same for every example.
PROPERTY = hypothesis_settings(
    max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def signed(monkeypatch):
    monkeypatch.setattr(settings, "BOUNCE_SECRET", SECRET)
    monkeypatch.setattr(settings, "BOUNCE_DOMAIN", DOMAIN)


@PROPERTY
@given(message_id=MESSAGE_IDS)
def test_a_token_names_its_message_in_any_case(signed, message_id):
    token = token_for(message_id)
    assert re.fullmatch(r"[a-z2-7]+", token) and len(token) == TOKEN_LENGTH
    assert message_id_of(token) == message_id
    assert message_id_of(token.upper()) == message_id  # an MTA that uppercases local parts


@PROPERTY
@given(
    message_id=MESSAGE_IDS,
    edits=st.lists(
        st.tuples(st.integers(0, TOKEN_LENGTH - 1), st.sampled_from(BASE32)), min_size=1
    ),
)
def test_any_altered_token_fails_to_verify(signed, message_id, edits):
    token = list(token_for(message_id))
    for position, character in edits:
        token[position] = character
    altered = "".join(token)
    if altered != token_for(message_id):
        assert message_id_of(altered) is None


@PROPERTY
@given(message_id=MESSAGE_IDS, other=MESSAGE_IDS)
def test_another_messages_id_with_this_tokens_signature_fails(signed, message_id, other):
    """Swapping in another id (the part a forger can read) breaks the signature."""
    genuine, forged = token_for(message_id), token_for(other)
    spliced = forged[:26] + genuine[26:]  # 130 bits: the id, then the signature's start
    if spliced not in (genuine, forged):
        assert message_id_of(spliced) is None


@PROPERTY
@given(text=st.text(max_size=80))
def test_no_text_verifies_by_chance(signed, text):
    assert message_id_of(text) is None


def test_the_return_path_fits_a_local_part(signed):
    address = return_path(uuid.uuid4())
    local, _, domain = address.partition("@")
    assert domain == DOMAIN
    assert local.startswith(LOCAL_PREFIX) and len(local) == 48 <= 64
    assert token_in(address) == local.removeprefix(LOCAL_PREFIX)
    assert token_in(address.upper()) == local.removeprefix(LOCAL_PREFIX).upper()
    assert token_in(f"<{address}>") is not None
    assert token_in(address.replace(DOMAIN, "other.example.md")) is None
    assert token_in(address.replace(LOCAL_PREFIX, "bounce+")) is None
    assert token_in(f"postmaster@{DOMAIN}") is None


def test_without_a_bounce_domain_there_is_no_return_path(monkeypatch):
    monkeypatch.setattr(settings, "BOUNCE_DOMAIN", "")
    assert return_path(uuid.uuid4()) is None
    assert token_in(f"bounces+{'a' * TOKEN_LENGTH}@{DOMAIN}") is None


def test_with_no_secret_set_another_process_verifies_by_the_databases_secret(db, monkeypatch):
    monkeypatch.setattr(settings, "BOUNCE_SECRET", "")
    monkeypatch.setattr(server_secret, "_known", {})  # as a fresh process: read or create it
    message_id = uuid.uuid4()
    token = token_for(message_id)
    assert ServerSecret.get_by_id("bounce_token").value
    check = (
        "import sys; from models.db import open_database; open_database(); "
        "from channels.return_path import message_id_of; print(message_id_of(sys.argv[1]))"
    )
    env = dict(os.environ, DATABASE_URL=db.herald_url, BOUNCE_SECRET="", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", check, token], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == str(message_id), result.stderr
    monkeypatch.setattr(settings, "BOUNCE_SECRET", SECRET)  # another server's secret
    assert message_id_of(token) is None
