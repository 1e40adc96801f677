"""The benchmark chart cannot drift from the targets: drawn from a small results.json
(tests/bench_results.json, one entry of every benchmark bench/chart.py knows), its table has a
row for every target of bench/targets.py, judged by that target, and no bench script carries a
target of its own. No benchmark is run here."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench import chart, targets
from bench.chart_rows import BENCHMARKS

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).with_name("bench_results.json")


@pytest.fixture
def results() -> dict:
    return json.loads(FIXTURE.read_text())


def test_the_fixture_has_every_benchmark_the_chart_draws(results):
    assert set(results) == set(BENCHMARKS)


@pytest.mark.parametrize("target", targets.ALL, ids=[t.figure for t in targets.ALL])
def test_every_target_has_its_row_in_the_table(results, target):
    rows, _ = chart.rows_and_panels(results)
    assert any(
        row.figure.startswith(target.figure) and row.target.startswith(target.text) for row in rows
    ), f"no row for {target.figure!r} with target {target.text!r}"


def test_each_row_is_judged_by_its_target(results):
    met = {row.figure: row.met for row in chart.rows_and_panels(results)[0]}
    verdicts = {
        "broadcast fan-out, 100,000 contacts (SQLite)": True,  # 5.5 s ≤ 6
        "broadcast fan-out, 1,000,000 contacts (PostgreSQL)": False,  # 70 s > 60
        "email end to end / raw smtplib": True,  # 0.90 ≥ 0.85
        "in-app end to end / no-op Dramatiq actor": True,  # 0.75 ≥ 0.70
        "webhook end to end / no-op Dramatiq actor": False,  # 0.50 < 0.70
        "API accept / hello world": True,  # 0.63 ≥ 0.60
        "API accept p99": False,  # 30 ms > 25
        "SQL statements per listing page": False,  # contacts: 5 → 6
        "history search p95": False,  # 61 ms > 50
        "crash safety": True,
        "scale-out: one host killed": True,
        "scale-out: schedulers acting at once": True,
        "cost of METRICS on / off": None,  # measured, no target
    }
    for start, expected in verdicts.items():
        (verdict,) = {v for figure, v in met.items() if figure.startswith(start)}
        assert verdict is expected, start


def test_a_rate_not_the_targets_count_is_judged_by_the_scaled_budget(results):
    small = {**results["fanout"], "contacts": 10_000, "total": 0.7}  # budget 0.6 s
    (row,), _ = BENCHMARKS["fanout"](small)
    assert (row.met, row.target.split()[:2]) == (False, ["≤", "0.6"])


def test_no_bench_script_carries_a_target_of_its_own():
    # "target 0.70×", "target = 10 * …", "≤ 100 ms", ">= 0.50" (not a format like {target:.1f})
    own = re.compile(r"target\W{1,4}\d+(\.\d+)?(?![\w}])|[≤≥] ?\d|[<>]= ?0\.\d")
    for path in sorted((ROOT / "bench").glob("*.py")):
        if path.name == "targets.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not own.search(line), f"{path.name}:{number}: {line.strip()}"


def test_every_script_that_judges_a_figure_reads_the_targets():
    for path in sorted((ROOT / "bench").glob("*.py")):
        text = path.read_text()
        if re.search(r"\b(meets|misses|verdict)\b", text) and path.name != "targets.py":
            assert re.search(r"from bench\.targets import|from bench import targets", text), (
                path.name
            )


def test_the_chart_and_its_table_are_drawn_and_the_readme_is_left_alone(results, tmp_path):
    figures = tmp_path / "results.json"
    shutil.copy(FIXTURE, figures)
    readme = (ROOT / "README.md").read_text()
    chart.main(["--results", str(figures)])
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "results.md").read_text()
    for target in targets.ALL:
        assert f"| {target.text}" in table, target.figure
    assert (ROOT / "README.md").read_text() == readme


def test_the_readme_changes_between_its_markers_only(results, tmp_path):
    readme = tmp_path / "README.md"
    before, after = "# Herald\n\n## Performance\n\n", "\n\nRatios move from run to run.\n"
    readme.write_text(f"{before}{chart.START}\nold table\n{chart.END}{after}")
    rows, _ = chart.rows_and_panels(results)
    assert chart.update_readme(rows, "2026-12-02", "2 CPUs", "docs/bench/results.png", readme)
    text = readme.read_text()
    assert text.startswith(before + chart.START) and text.endswith(chart.END + after)
    assert "old table" not in text
    assert all(f"| {row.figure} |" in text for row in rows)
