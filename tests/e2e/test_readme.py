"""The README, executed: every ```sh block runs in order, as a newcomer would paste it into a
second terminal, against a real ``herald run`` on embedded defaults. ```console and ```text
blocks are shown, not run."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dev.embedded_redis import free_port
from tests.support import started_with_output, wait_until

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def runnable_blocks(text: str) -> list[tuple[int, str]]:
    """The README's ```sh blocks, with the line each starts on."""
    return [
        (text.count("\n", 0, match.start()) + 2, match.group(1))
        for match in re.finditer(r"^```sh\n(.*?)^```$", text, flags=re.S | re.M)
    ]


def _commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined."""
    return [command for command in re.sub(r"\\\n", " ", block).split("\n") if command.strip()]


def test_every_runnable_curl_fails_on_http_errors_and_is_authorized():
    blocks = runnable_blocks(README.read_text())
    curls = [c for _, block in blocks for c in _commands(block) if re.search(r"\bcurl\b", c)]
    assert len(curls) >= 10
    for command in curls:
        assert re.search(r"curl -s?f|--fail", command), command
        assert "Authorization: Bearer $" in command, command
        assert "<" not in command.split("#")[0].replace("<p>", "").replace("</p>", ""), command


@pytest.mark.e2e
def test_the_readme_examples_run_as_written(tmp_path):
    port, smtp_port = free_port(), free_port()
    env = dict(
        os.environ,
        VAR_DIR=str(tmp_path / "var"),
        PORT=str(port),
        SMTP_PORT=str(smtp_port),
        DATABASE_URL="",
        REDIS_URL="",
        BROKER_URL="",
        WEB_CONCURRENCY="1",
        WORKER_THREADS="2",
        PYTHONPATH=str(ROOT),
    )
    process, output, reader = started_with_output(
        [sys.executable, "-m", "cli", "run"], cwd=ROOT, env=env
    )
    try:
        wait_until(lambda: any("Dev API key:" in line for line in output), timeout=90)
        key = (tmp_path / "var" / "dev-key").read_text().strip()
        assert f"Dev API key:   {key}" in "".join(output)
        result = _run_readme(tmp_path, dict(env, HERALD=f"http://127.0.0.1:{port}", KEY=key))
        assert result.returncode == 0, result.stdout[-6000:] + "\n" + "".join(output[-40:])
        assert list((tmp_path / "var" / "outbox").glob("*.eml"))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        reader.join(5)


def _run_readme(tmp_path: Path, env: dict) -> subprocess.CompletedProcess:
    """Runs the README's ```sh blocks in one bash, in order, stopping at the first failure;
    ``herald`` on the PATH is this checkout's command."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    herald = bin_dir / "herald"
    herald.write_text(f'#!/bin/sh\nexec {sys.executable} -m cli "$@"\n')
    herald.chmod(0o755)
    script = ["set -euo pipefail"]
    for line, block in runnable_blocks(README.read_text()):
        script += [f"echo '--- README.md line {line}'", block]
    return subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=tmp_path,
        env=dict(env, PATH=f"{bin_dir}{os.pathsep}{env['PATH']}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
