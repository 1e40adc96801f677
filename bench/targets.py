"""The DESIGN.md targets, in one place: every bench script prints its verdict against these and
bench/chart.py draws them (tests/test_bench.py checks that each has its row in the chart's
table: a row whose figure starts with the target's ``figure`` and whose target is its ``text``).

A target is a bound on one figure: ``limit`` and whether the figure must stay at or below it
(``at_most``) or reach it. Ratios are Herald over its baseline measured in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """``figure`` ≤ ``limit`` (``at_most``) or ≥ ``limit``, in ``unit`` ("×" for a ratio)."""

    figure: str
    limit: float
    at_most: bool
    unit: str = ""
    #: What the table shows instead of "≤ limit unit", when that says it better.
    shown: str = ""

    def met(self, value: float) -> bool:
        return value <= self.limit if self.at_most else value >= self.limit

    @property
    def text(self) -> str:
        """As the results table shows it: "≤ 6 s", "≥ 0.85×"."""
        if self.shown:
            return self.shown
        limit = f"{self.limit:.2f}×" if self.unit == "×" else f"{self.limit:g} {self.unit}"
        return f"{'≤' if self.at_most else '≥'} {limit.strip()}"

    def verdict(self, value: float) -> str:
        """One line for a script's output: "target ≥ 0.85× → meets"."""
        return f"target {self.text} → {'meets' if self.met(value) else 'misses'}"


#: Broadcast fan-out, seconds for the number of contacts the target names (scaled linearly
#: when a run uses another count).
FANOUT_SQLITE = Target("broadcast fan-out, 100,000 contacts (SQLite)", 6, True, "s")
FANOUT_SQLITE_CONTACTS = 100_000
FANOUT_POSTGRESQL = Target("broadcast fan-out, 1,000,000 contacts (PostgreSQL)", 60, True, "s")
FANOUT_POSTGRESQL_CONTACTS = 1_000_000
EMAIL = Target("email end to end / raw smtplib", 0.85, False, "×")
INAPP = Target("in-app end to end / no-op Dramatiq actor", 0.70, False, "×")
WEBHOOK = Target("webhook end to end / no-op Dramatiq actor", 0.70, False, "×")
API_RATIO = Target("API accept / hello world", 0.60, False, "×")
API_P99_MS = Target("API accept p99", 25, True, "ms")
#: Statements for a page of 50 items over those for a page of 5: constant means 1.
LISTING_STATEMENTS = Target("SQL statements per listing page", 1, True, "×", shown="constant")
SEARCH_P95_MS = Target("history search p95, 1,000,000 messages (PostgreSQL)", 50, True, "ms")
SEARCH_MESSAGES = 1_000_000
CRASH_LOST = Target("crash safety", 0, True, shown="0 lost")
SCALEOUT_LOST = Target("scale-out: one host killed", 0, True, shown="0 lost")

#: Every target, as tests/test_bench.py checks the chart's table against them.
ALL = [
    FANOUT_SQLITE, FANOUT_POSTGRESQL, EMAIL, INAPP, WEBHOOK, API_RATIO, API_P99_MS,
    LISTING_STATEMENTS, SEARCH_P95_MS, CRASH_LOST, SCALEOUT_LOST,
]  # fmt: skip


def fanout_budget(contacts: int, backend: str) -> float:
    """Seconds allowed for a fan-out to ``contacts`` on ``backend`` ("sqlite" or
    "postgresql"): the target's rate applied to the count run."""
    if backend == "sqlite":
        return FANOUT_SQLITE.limit * contacts / FANOUT_SQLITE_CONTACTS
    return FANOUT_POSTGRESQL.limit * contacts / FANOUT_POSTGRESQL_CONTACTS
