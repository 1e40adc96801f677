"""Herald's clock as the invariant test runs it: it stands still, and moves only when the model
advances it.

The scheduler's jobs take ``now=``, but that alone is not enough: a worker claims a message only
when its ``due_at`` has come by the worker's own clock, so a replay run at a moved ``now`` would
leave messages no real-time worker may claim. Every Herald module (web, worker and jobs, in this
process) therefore reads this clock, and a ``dramatiq tasks.worker`` subprocess is started on the same
instant (:data:`DRAMATIQ_ON_CLOCK`). It stands still between steps so that a run does not depend
on how fast the machine is (a step's outcome is the same when it is replayed to shrink a
failure); retries still proceed, as their delays are shorter than the claim's tolerance for
clock skew. Time is the one thing moved by hand here: days of retention cannot be waited for.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import models.base

REAL_UTCNOW = models.base.utcnow
HERALD_PACKAGES = {
    "api",
    "tasks",
    "templating",
    "channels",
    "models",
    "scheduler",
    "dev",
    "cli",
    "tests",
}

#: ``python -c DRAMATIQ_ON_CLOCK <ISO instant>``: ``dramatiq tasks.worker`` (one process, one thread)
#: with Herald's clock standing at that instant. Worker processes are forked: they inherit it.
DRAMATIQ_ON_CLOCK = (
    "import sys; from tests.invariants.clock import stopped; stopped(sys.argv[1]); "
    "from dramatiq.cli import main; "
    "sys.argv = ['dramatiq', 'tasks.worker', '--processes', '1', '--threads', '1']; "
    "sys.exit(main())"
)


def _herald_modules() -> list:
    """Herald's modules loaded so far that read the real clock."""
    return [
        module
        for name, module in list(sys.modules.items())
        if name.partition(".")[0] in HERALD_PACKAGES
        and getattr(module, "utcnow", None) is REAL_UTCNOW
    ]


def stopped(instant: str) -> None:
    """For a whole process: Herald's clock stands at ``instant`` (ISO 8601) from now on."""
    moment = datetime.fromisoformat(instant)

    def now() -> datetime:
        return moment

    for module in [models.base, *_herald_modules()]:
        module.utcnow = now


class Clock:
    """``now()`` is where the model has moved the clock; :meth:`install` makes it Herald's."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to the real time."""
        self.current = REAL_UTCNOW()

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)

    def install(self, monkeypatch) -> None:
        """Point every loaded module's ``utcnow`` (and later imports of it) at this clock."""
        for module in [models.base, *_herald_modules()]:
            monkeypatch.setattr(module, "utcnow", self.now)
