"""The channel table is the one statement of each channel's names, and every layer agrees with
it: the adapters, their settings, the ``deliver`` queues, the search enum and the API."""

import os
import subprocess
import sys

import channel_table
from channel_table import BY_RECIPIENT_TYPE, CHANNELS, CHANNELS_BY_NAME, INAPP, SMS, ChannelRow
from channels import ADAPTERS, RECIPIENT_TYPES, REGISTRY, adapter_class
from models.contact import CONTACT_CHANNEL_TYPES
from models.search import CHANNEL_NAMES
from settings import SETTINGS, ChannelSettings, settings
from tasks.deliver import ACTORS
from tasks.requests import CONTACT_CHANNELS

ROOT = os.path.dirname(channel_table.__file__)


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DATABASE_URL": "sqlite:///:memory:"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_every_row_has_an_adapter_and_every_adapter_a_row():
    assert list(ADAPTERS) == [row.name for row in CHANNELS]
    for row in CHANNELS:
        adapter = REGISTRY[row.name]
        assert adapter_class(row.name).row is row
        assert (adapter.name, adapter.recipient_type, adapter.settings_prefix) == (
            row.name,
            row.recipient_type,
            row.settings_prefix,
        )


def test_no_two_channels_share_a_name_type_prefix_or_queue():
    for column in ("name", "recipient_type", "settings_prefix", "queue", "mambu"):
        values = [getattr(row, column) for row in CHANNELS]
        assert len(set(values)) == len(values), column
    assert set(CHANNELS_BY_NAME.values()) == set(BY_RECIPIENT_TYPE.values()) == set(CHANNELS)


def test_every_settings_prefix_names_a_channel_s_settings():
    for row in CHANNELS:
        assert isinstance(settings.channel(row.settings_prefix), ChannelSettings), row.name
        assert f"{row.settings_prefix}_MAX_RETRIES" in SETTINGS, row.name


def test_each_channel_has_a_deliver_actor_on_its_queue():
    assert {name: actor.queue_name for name, actor in ACTORS.items()} == {
        row.name: row.queue for row in CHANNELS
    }


def test_the_search_enum_is_the_table_s_names_each_for_one_channel():
    assert {alias: row.name for row in CHANNELS for alias in row.search_names} == CHANNEL_NAMES
    assert sum(len(row.search_names) for row in CHANNELS) == len(CHANNEL_NAMES)
    assert CHANNEL_NAMES["text"] == SMS.name
    assert (
        CHANNEL_NAMES["screen"] == CHANNEL_NAMES["in_app"] == CHANNEL_NAMES["inapp"] == INAPP.name
    )


def test_the_api_and_the_registry_read_the_table():
    assert {row.recipient_type: row.name for row in CHANNELS} == RECIPIENT_TYPES
    assert tuple(row.recipient_type for row in CHANNELS if row.in_registry) == CONTACT_CHANNEL_TYPES
    assert [row.name for row in CHANNELS if row.in_registry] == CONTACT_CHANNELS


def test_a_queue_is_named_after_its_channel_unless_given():
    assert ChannelRow("fax", "fax", "FAX", "fax", mambu="FAX").queue == "fax"
    assert ChannelRow("fax", "fax", "FAX", "fax", mambu="FAX", queue="slow").queue == "slow"


def test_the_table_imports_nothing_of_herald_s():
    started = python(
        "import sys, channel_table; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'settings', 'setting_kinds', 'models', 'channels', 'templating', 'tasks', 'api', "
        "'scheduler', 'dev'}))"
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "[]"
