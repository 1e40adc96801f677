"""Adapters are built on first use: importing ``channels`` imports no adapter module, builds no
adapter and changes no process-wide state (such as logging filters)."""

import os
import subprocess
import sys
import threading

import channel_table
from channels import ADAPTERS, REGISTRY, get_channel

IMPORTED_QUIETLY = """
import logging, sys
import channels
adapters = sorted(name for name in sys.modules if name.startswith("channels.")
                  and name not in ("channels.base", "channels.errors"))
filters = [f for name in ("", "urllib3", "urllib3.connectionpool")
           for f in logging.getLogger(name).filters]
print(adapters, channels._built, filters)
"""


def test_importing_channels_builds_no_adapter_and_installs_nothing():
    started = subprocess.run(
        [sys.executable, "-c", IMPORTED_QUIETLY],
        env={**os.environ, "DATABASE_URL": "sqlite:///:memory:"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.path.dirname(channel_table.__file__),
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "[] {} []"


def test_the_registry_lists_every_channel_and_builds_each_once():
    assert sorted(REGISTRY) == sorted(ADAPTERS)
    assert len(REGISTRY) == len(ADAPTERS)
    assert "fax" not in REGISTRY
    assert REGISTRY.get("fax") is None
    assert REGISTRY["email"] is get_channel("email") is get_channel("email")


def test_threads_that_first_use_a_channel_together_share_one_adapter():
    import channels

    channels._built.pop("webhook", None)
    barrier, seen = threading.Barrier(8), []

    def use() -> None:
        barrier.wait()
        seen.append(get_channel("webhook"))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(seen) == 8
    assert len({id(adapter) for adapter in seen}) == 1
