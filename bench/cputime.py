"""CPU time of a benchmark stack's processes, read from /proc: each process ``Stack`` starts
leads its own session, so a session's CPU is that of the process and every worker it forked."""

from __future__ import annotations

import os
from pathlib import Path

from bench.harness import Stack

TICKS = os.sysconf("SC_CLK_TCK")


def session_cpu_seconds(sessions: set[int]) -> float:
    """User + system CPU seconds of the live processes in these sessions (by leader pid)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[3]) in sessions:  # session id; utime, stime are fields 14 and 15
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def herald_cpu_seconds(stack: Stack, names: tuple[str, ...] = ("web", "worker")) -> float:
    """CPU seconds used so far by the stack's Herald processes (web and workers by default,
    not the sinks standing in for providers)."""
    return session_cpu_seconds({stack.processes[n].pid for n in names if n in stack.processes})
