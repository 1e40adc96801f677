"""The processes ``herald run`` starts: each in its own session (a terminal's Ctrl-C reaches only
``herald run``, which stops them in order), its output labelled with its name.

honcho would label output too, but it stops every process at once on a signal, while the
embedded Redis must outlive the web and worker processes that use it; this is the part of it
Herald needs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from typing import IO

_print_lock = threading.Lock()


def _relay(label: str, stream: IO[bytes]) -> None:
    for raw in stream:
        line = raw.decode(errors="replace").rstrip("\n")
        with _print_lock:
            sys.stdout.write(f"{label}| {line}\n")
            sys.stdout.flush()
    stream.close()


class RelayedProcess(subprocess.Popen[bytes]):
    """A child process and the thread relaying its output."""

    relay: threading.Thread


def start_processes(commands: dict[str, str], env: dict[str, str]) -> dict[str, RelayedProcess]:
    """Start each ``name: shell command`` in its own session (the shell replaced by the command,
    so that signals reach it), relaying its output (stdout and
    stderr) line by line as ``name | line``."""
    width = max(len(name) for name in commands) + 1
    children = {}
    for name, command in commands.items():
        child = RelayedProcess(
            "exec " + command,
            shell=True,
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        child.relay = threading.Thread(
            target=_relay, args=(name.ljust(width), child.stdout), daemon=True
        )
        child.relay.start()
        children[name] = child
    return children


def stop_processes(children: dict[str, RelayedProcess], timeout: float = 10) -> None:
    """SIGTERM every process (each passes it on to its own workers: a second one would make them
    hurry), wait up to ``timeout`` seconds for all, SIGKILL the process groups of what is left,
    and wait until their output is relayed."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.wait()
        timeout = 0.1
    for child in children.values():
        child.relay.join(5)


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signum)
