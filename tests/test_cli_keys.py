"""``herald keys`` and ``herald tokens``: several keys per sender, listed, revoked; user tokens
revoked by user and by time. Run in-process on the ``herald`` fixture's database."""

import re
from datetime import UTC, datetime, timedelta

import pytest

LINE = re.compile(
    r"\s*(?P<id>\d+)  (?P<prefix>hk_\S{7})… +(?P<created>\S+) +(?P<used>\S+) +(?P<expires>\S+)"
    r" +(?P<revoked>\S+)"
)
MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def listing(herald, sender):
    result = herald("keys", "list", sender)
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["ID", "PREFIX", "CREATED", "LAST", "USED", "EXPIRES", "REVOKED"]
    return [LINE.fullmatch(line).groupdict() for line in lines]


def test_keys_add_prints_only_a_new_key_and_list_shows_each(herald):
    first = herald("senders", "create", "permits").stdout.strip()
    added = herald("keys", "add", "permits")
    assert added.returncode == 0
    assert re.fullmatch(r"hk_[A-Za-z0-9_-]{43}\n", added.stdout)
    assert added.stdout.strip() != first

    rows = listing(herald, "permits")
    assert [row["prefix"] for row in rows] == [first[:10], added.stdout[:10]]
    assert int(rows[0]["id"]) < int(rows[1]["id"])
    for row in rows:
        assert MOMENT.fullmatch(row["created"])
        assert (row["used"], row["expires"], row["revoked"]) == ("-", "-", "-")
    assert first not in herald("keys", "list", "permits").stdout


@pytest.mark.parametrize(
    ("given", "expected"),
    [("90d", timedelta(days=90)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2))],
)
def test_keys_expire_after_a_duration(herald, given, expected):
    herald("senders", "create", "permits")
    before = datetime.now(UTC).replace(microsecond=0)
    assert herald("keys", "add", "permits", "--expires", given).returncode == 0
    expires = datetime.strptime(listing(herald, "permits")[1]["expires"], "%Y-%m-%dT%H:%M:%SZ")
    expires = expires.replace(tzinfo=UTC)
    assert before + expected <= expires <= datetime.now(UTC) + expected


def test_keys_expire_at_an_iso_date_and_refuse_the_past_and_nonsense(herald):
    herald("senders", "create", "permits")
    assert herald("keys", "add", "permits", "--expires", "2999-01-31").returncode == 0
    assert listing(herald, "permits")[1]["expires"] == "2999-01-31T00:00:00Z"
    offset = herald("keys", "add", "permits", "--expires", "2999-01-31T12:00:00+02:00")
    assert offset.returncode == 0
    assert listing(herald, "permits")[2]["expires"] == "2999-01-31T10:00:00Z"

    past = herald("keys", "add", "permits", "--expires", "2000-01-01")
    assert (past.returncode, past.stdout) == (2, "")
    assert "--expires is not in the future" in past.stderr
    nonsense = herald("keys", "add", "permits", "--expires", "soon")
    assert nonsense.returncode == 2 and "--expires" in nonsense.stderr
    assert len(listing(herald, "permits")) == 3


def test_keys_revoke_marks_the_key_and_keeps_the_others(herald):
    herald("senders", "create", "permits")
    herald("keys", "add", "permits")
    first, second = listing(herald, "permits")

    revoked = herald("keys", "revoke", first["id"])
    assert (revoked.returncode, revoked.stdout, revoked.stderr) == (0, "", "")
    first_now, second_now = listing(herald, "permits")
    assert MOMENT.fullmatch(first_now["revoked"])
    assert second_now["revoked"] == "-"
    assert herald("keys", "revoke", first["id"]).returncode == 0  # again: the first time stays
    assert listing(herald, "permits")[0]["revoked"] == first_now["revoked"]
    assert re.search(rf"\bpermits\s+no\s+{second['prefix']}…", herald("senders", "list").stdout)


def test_keys_commands_name_what_is_missing(herald):
    nobody = herald("keys", "add", "nobody")
    assert nobody.returncode == 1 and "no sender named 'nobody'" in nobody.stderr
    assert herald("keys", "list", "nobody").returncode == 1
    unknown = herald("keys", "revoke", "999999")
    assert unknown.returncode == 1 and "no API key with id 999999" in unknown.stderr
    assert herald("keys", "revoke", "first").returncode == 2


def test_tokens_revoke_records_a_revocation_per_user_and_before_a_time(herald, tmp_path):
    from models.db import database, open_database
    from models.user_token import TokenRevocation

    herald("senders", "create", "permits")
    assert herald("tokens", "revoke", "--user", "ion").returncode == 0
    assert herald("tokens", "revoke", "--user", "ana", "--sender", "permits").returncode == 0
    assert herald("tokens", "revoke", "--before", "2024-05-01T08:00:00+03:00").returncode == 0

    previous = database.obj
    try:
        open_database(f"sqlite:///{tmp_path}/cli.db")
        rows = list(TokenRevocation.select().order_by(TokenRevocation.id))
        assert [(row.user, row.sender and row.sender.name) for row in rows] == [
            ("ion", None),
            ("ana", "permits"),
            (None, None),
        ]
        assert rows[2].not_before == datetime(2024, 5, 1, 5, tzinfo=UTC)
    finally:
        database.initialize(previous)


def test_tokens_revoke_refuses_what_would_be_a_mistake(herald):
    nothing = herald("tokens", "revoke")
    assert nothing.returncode == 2 and "--user" in nothing.stderr
    future = herald("tokens", "revoke", "--before", "2999-01-01")
    assert future.returncode == 2 and "future" in future.stderr
    bad = herald("tokens", "revoke", "--before", "yesterday")
    assert bad.returncode == 2 and "--before" in bad.stderr
    nobody = herald("tokens", "revoke", "--user", "ion", "--sender", "nobody")
    assert nobody.returncode == 1 and "no sender named 'nobody'" in nobody.stderr
    long = herald("tokens", "revoke", "--user", "x" * 201)
    assert long.returncode == 2 and "--user" in long.stderr
