"""SQL statements per listing page: for each listing of the API, the statements one page costs
with 5 items and with 50, as tests/api/test_statement_counts.py counts them (that test is run
here, its counts recorded rather than only compared). Constant means 50 items cost what 5 do.

    python -m bench.statements
"""

from __future__ import annotations

import sys

from bench.harness import ROOT, save
from bench.targets import LISTING_STATEMENTS

TEST = "tests/api/test_statement_counts.py"


class Recorder:
    """A pytest plugin keeping, by listing, the statements each counted request ran."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}
        self.small = self.large = 0

    def pytest_collection_modifyitems(self, items) -> None:
        module = items[0].module
        self.small, self.large = module.SMALL, module.LARGE
        counted = module._counted

        def recording(world, database, listing, headers):
            statements, items = counted(world, database, listing, headers)
            self.counts.setdefault(listing.name, []).append(statements)
            return statements, items

        module._counted = recording


def main() -> None:
    import pytest

    recorder = Recorder()
    code = pytest.main(["-q", "-p", "no:cacheprovider", str(ROOT / TEST)], plugins=[recorder])
    listings = {name: counts for name, counts in recorder.counts.items() if len(counts) == 2}
    print(f"\nSQL statements per listing page, {recorder.small} items vs {recorder.large}")
    print(f"{'listing':<32}{recorder.small:>8}{recorder.large:>8}")
    for name, (small, large) in listings.items():
        print(f"{name:<32}{small:>8}{large:>8}")
    worst = max((large / max(small, 1) for small, large in listings.values()), default=0)
    print(f"most growth {worst:.2f}×: {LISTING_STATEMENTS.verdict(worst)}")
    save("statements", {"small": recorder.small, "large": recorder.large, "listings": listings})
    if code != 0:
        sys.exit(f"{TEST} failed (exit {code})")


if __name__ == "__main__":
    main()
