"""The herald command, run as a user runs it."""

import os
import re
import subprocess
import sys

from settings import SETTINGS, markdown_table, settings


def test_the_command_runs_as_a_process(tmp_path):
    """The entry point itself: the other tests run ``cli.main`` in-process."""
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path}/cli.db", VAR_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    from tests.models.test_migrations import LATEST

    assert (result.returncode, result.stderr) == (0, "")
    assert f"schema version: {LATEST}" in result.stdout
    assert os.path.exists(tmp_path / "cli.db")


def test_commands_leave_the_database_binding_as_they_found_it(herald):
    from models.db import database

    previous = database.obj
    assert herald("senders", "create", "permits").returncode == 0
    assert herald("senders", "list").returncode == 0
    assert database.obj is previous


def test_db_upgrade_reports_the_schema_version(herald):
    result = herald("db", "upgrade")
    assert result.returncode == 0
    from tests.models.test_migrations import LATEST

    assert f"schema version: {LATEST}" in result.stdout


def test_senders_create_prints_only_the_key(herald, tmp_path):
    result = herald(
        "senders", "create", "permits", "--grant", "contacts:read", "--grant", "resend_failed"
    )

    assert result.returncode == 0
    assert re.fullmatch(r"hk_[A-Za-z0-9_-]{43}\n", result.stdout)

    from models.db import database, open_database
    from models.sender import sender_for_key

    previous = database.obj
    try:
        open_database(f"sqlite:///{tmp_path}/cli.db")
        sender = sender_for_key(result.stdout.strip())
        assert sender.name == "permits"
        assert sender.permissions == ["contacts:read", "resend_failed"]
        assert not sender.is_admin
    finally:
        database.initialize(previous)


def test_unknown_permissions_are_refused(herald):
    result = herald("senders", "create", "crm", "--grant", "everything")
    assert result.returncode == 2
    assert "unknown permission everything" in result.stderr
    assert "resend_failed" in result.stderr
    assert "crm" not in herald("senders", "list").stdout


def test_senders_list_and_duplicates(herald):
    herald("senders", "create", "ops", "--admin")
    duplicate = herald("senders", "create", "ops")
    listing = herald("senders", "list")

    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    assert duplicate.stdout == ""
    assert re.search(r"\bops\s+yes\s+hk_", listing.stdout)


def test_grants_are_added_to_and_taken_from_an_existing_sender(herald):
    herald("senders", "create", "crm")

    assert herald("senders", "grant", "crm", "contacts:write").returncode == 0
    assert herald("senders", "grant", "crm", "contacts:read").returncode == 0
    again = herald("senders", "grant", "crm", "contacts:read")
    assert again.returncode == 0 and "already has contacts:read" in again.stderr
    assert re.search(
        r"\bcrm\s+no\s+hk_\S+\s+3000\*\s+off\*\s+contacts:read,contacts:write",
        herald("senders", "list").stdout,
    )

    assert herald("senders", "revoke-grant", "crm", "contacts:write").returncode == 0
    assert re.search(
        r"\bcrm\s+no\s+hk_\S+\s+3000\*\s+off\*\s+contacts:read\n", herald("senders", "list").stdout
    )

    unknown = herald("senders", "grant", "crm", "everything")
    assert unknown.returncode == 2 and "unknown permission everything" in unknown.stderr
    nobody = herald("senders", "grant", "nobody", "contacts:read")
    assert nobody.returncode == 1 and "no sender named 'nobody'" in nobody.stderr


def test_every_setting_is_documented_in_the_readme():
    with open(os.path.join(os.path.dirname(__file__), "..", "README.md")) as file:
        readme = file.read()
    missing = [name for name in SETTINGS if f"`{name}`" not in readme]
    assert missing == []


def test_settings_shows_the_values_in_force_with_secrets_masked(monkeypatch, capsys):
    import cli

    monkeypatch.setenv("SCHEDULE_BATCH_SIZE", "250")
    monkeypatch.setattr(settings, "SCHEDULE_BATCH_SIZE", 250)
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2")
    monkeypatch.setattr(settings, "SMTP_PASSWORD", "hunter2")
    monkeypatch.setattr(settings, "DATABASE_URL", "postgresql://herald:pw@db/herald")

    assert cli.main(["settings"]) == 0

    lines = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()}
    assert list(lines) == list(SETTINGS)
    assert lines["SCHEDULE_BATCH_SIZE"] == ["250", "[environment]"]
    assert lines["PURGE_BATCH_SIZE"] == ["500", "[default]"]
    assert lines["SMTP_PASSWORD"] == ["***", "[environment]"]
    assert lines["DATABASE_URL"][0] == "postgresql://herald:***@db/herald"
    assert lines["SMTP_USER"] == ["(empty)", "[default]"]


def test_settings_markdown_is_the_readme_table(capsys):
    import cli

    assert cli.main(["settings", "--markdown"]) == 0
    assert capsys.readouterr().out == markdown_table() + "\n"
    with open(os.path.join(os.path.dirname(__file__), "..", "README.md")) as file:
        assert markdown_table() in file.read()
