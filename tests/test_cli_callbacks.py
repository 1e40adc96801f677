"""``herald senders`` commands for delivery callbacks and signing secrets, run as a user runs them."""

import re

import pytest

from models.db import database, open_database
from models.sender import Sender


@pytest.fixture
def stored(tmp_path):
    """Read a sender as the CLI left it in its database."""
    previous = database.obj

    def read(name: str) -> Sender:
        open_database(f"sqlite:///{tmp_path}/cli.db")
        try:
            return Sender.get(Sender.name == name)
        finally:
            database.close()
            database.initialize(previous)

    return read


def test_set_callback_stores_the_url_and_prints_nothing(herald, stored):
    herald("senders", "create", "permits")

    result = herald("senders", "set-callback", "permits", "https://permits.example.md/herald")

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert stored("permits").callback_url == "https://permits.example.md/herald"

    cleared = herald("senders", "set-callback", "permits", "--clear")
    assert (cleared.returncode, cleared.stdout) == (0, "")
    assert stored("permits").callback_url is None


@pytest.mark.parametrize(
    "url", ["http://permits.example.md/herald", "https://10.0.0.1/", "https://[::1]/", "x"]
)
def test_set_callback_refuses_unsafe_urls(herald, stored, url):
    herald("senders", "create", "permits", "--callback-url", "https://permits.example.md/cb")

    result = herald("senders", "set-callback", "permits", url)

    assert result.returncode == 2
    assert "invalid callback URL" in result.stderr
    assert stored("permits").callback_url == "https://permits.example.md/cb"


def test_set_callback_needs_exactly_one_of_url_and_clear(herald):
    herald("senders", "create", "permits")
    assert herald("senders", "set-callback", "permits").returncode == 2
    both = herald("senders", "set-callback", "permits", "https://a.example.md/", "--clear")
    assert both.returncode == 2


def test_unknown_senders_are_named(herald):
    for command in ("set-callback", "rotate-secret", "show-secret"):
        args = ["https://a.example.md/"] if command == "set-callback" else []
        result = herald("senders", command, "nobody", *args)
        assert result.returncode == 1
        assert "no sender named 'nobody'" in result.stderr
        assert result.stdout == ""


def test_create_takes_a_callback_url(herald, stored):
    result = herald("senders", "create", "permits", "--callback-url", "https://p.example.md/cb")
    assert result.returncode == 0
    assert re.fullmatch(r"hk_[A-Za-z0-9_-]{43}\n", result.stdout)
    assert stored("permits").callback_url == "https://p.example.md/cb"

    refused = herald("senders", "create", "tax", "--callback-url", "https://127.0.0.1/cb")
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert "tax" not in herald("senders", "list").stdout


def test_rotate_secret_prints_only_the_new_secret(herald, stored):
    herald("senders", "create", "permits")
    shown = herald("senders", "show-secret", "permits")
    assert re.fullmatch(r"[0-9a-f]{64}\n", shown.stdout)
    assert shown.stdout.strip() == stored("permits").callback_secret

    rotated = herald("senders", "rotate-secret", "permits")

    assert rotated.returncode == 0
    assert re.fullmatch(r"[0-9a-f]{64}\n", rotated.stdout)
    assert rotated.stdout != shown.stdout
    assert stored("permits").callback_secret == rotated.stdout.strip()
    assert herald("senders", "show-secret", "permits").stdout == rotated.stdout


def test_the_callback_and_webhook_secrets_rotate_apart(herald, stored):
    herald("senders", "create", "permits")
    callback = herald("senders", "show-secret", "permits").stdout
    webhooks = herald("senders", "show-secret", "permits", "--webhooks").stdout
    assert re.fullmatch(r"[0-9a-f]{64}\n", webhooks)
    assert webhooks != callback
    assert webhooks.strip() == stored("permits").webhook_secret

    rotated = herald("senders", "rotate-secret", "permits", "--webhooks").stdout

    assert rotated not in (webhooks, callback)
    assert stored("permits").webhook_secret == rotated.strip()
    assert stored("permits").callback_secret == callback.strip()  # callbacks' secret unchanged
    assert herald("senders", "rotate-secret", "permits").stdout.strip() != callback.strip()
    assert stored("permits").webhook_secret == rotated.strip()
