"""DESIGN.md "Layering": imports flow one way, ``api/``, ``scheduler/``, ``bounces/``, ``cli/``,
``dev/`` → ``tasks/`` → ``templating/``, ``channels/``, ``models/`` → ``channel_table.py``,
``settings.py``; nothing but ``api/`` imports ``api/``; no module imports another's private
names; and importing any module opens nothing (the process entry points do)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Each top-level Herald package or module, by layer: a module may import its own layer and
#: those below (lower numbers), never one above.
LAYERS = {
    "settings": 0,
    "setting_kinds": 0,
    "channel_table": 0,
    "models": 1,
    "channels": 1,
    "templating": 1,
    "tasks": 2,
    "api": 3,
    "scheduler": 3,
    "bounces": 3,
    "cli": 3,
    "dev": 3,
}
#: The processes' own packages (the top layer) import none of each other, but for ``herald run``.
TOP_LAYER_IMPORTS = {("cli", "dev"), ("cli", "bounces")}
#: Entry modules: a process starts with them, nothing imports them.
ENTRY_MODULES = {"tasks.worker", "scheduler.__main__", "bounces.__main__", "cli.__main__"}


def production_modules() -> dict[str, Path]:
    """Every Herald module outside ``tests/`` and ``bench/``, by dotted name."""
    modules = {}
    for top in LAYERS:
        single = ROOT / f"{top}.py"
        paths = [single] if single.exists() else sorted((ROOT / top).rglob("*.py"))
        for path in paths:
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The Herald modules ``path`` imports anywhere in it (function-local imports too): for
    ``from package import name``, the submodule when ``name`` is one, else the package."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return {name for name in found if name.partition(".")[0] in LAYERS}


def import_graph() -> dict[str, set[str]]:
    modules = production_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def top(module: str) -> str:
    return module.partition(".")[0]


def test_the_module_list_covers_every_layer():
    modules = production_modules()
    assert {top(name) for name in modules} == set(LAYERS)
    assert {"api.app", "tasks.worker", "templating.engine", "models.db"} <= set(modules)


def imports_where(wrong: Callable[[str, str], bool]) -> list[str]:
    """Every ``module imports target`` for which ``wrong(module, target)``."""
    return [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in sorted(targets)
        if wrong(module, target)
    ]


def test_no_module_imports_a_higher_layer():
    assert imports_where(lambda module, target: LAYERS[top(target)] > LAYERS[top(module)]) == []


def test_nothing_outside_the_api_imports_it():
    assert imports_where(lambda module, target: top(target) == "api" != top(module)) == []


def test_the_processes_packages_import_none_of_each_other():
    def across(module: str, target: str) -> bool:
        pair = (top(module), top(target))
        return LAYERS[pair[0]] == LAYERS[pair[1]] == max(LAYERS.values()) and (
            pair[0] != pair[1] and pair not in TOP_LAYER_IMPORTS
        )

    assert imports_where(across) == []


def test_nothing_imports_an_entry_module():
    assert imports_where(lambda module, target: target in ENTRY_MODULES) == []


def test_no_module_imports_private_names():
    private = [
        f"{module} imports {node.module}.{alias.name}"
        for module, path in production_modules().items()
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ImportFrom) and node.module and top(node.module) in LAYERS
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert private == []


def test_modules_import_each_other_without_cycles():
    """Counting function-local imports too: none is there to break a cycle."""
    graph = import_graph()
    done: set[str] = set()
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append(" → ".join([*path[path.index(module) :], module]))
            return
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert cycles == []


#: Run with REDIS_URL, BROKER_URL and DATABASE_URL unset, in an empty directory that is also
#: VAR_DIR: imports every production module but the entry modules, with every connection and
#: name lookup refused and recorded (making a socket is not one: urllib3 makes one at import to
#: see whether IPv6 works), then reports what was opened or built.
IMPORT_EVERYTHING = """
import gc, importlib, json, socket, sys

attempts = []

def refuse(what):
    def refused(*args, **kwargs):
        attempts.append(f"{what}{args[1:] if what.startswith('socket.') else args}")
        raise OSError(f"{what} refused while importing")
    return refused

socket.socket.connect = refuse("socket.connect")
socket.socket.connect_ex = refuse("socket.connect_ex")
socket.create_connection = refuse("create_connection")
socket.getaddrinfo = refuse("getaddrinfo")

for name in json.loads(sys.argv[1]):
    importlib.import_module(name)

import dramatiq.broker
from channels.base import Channel
from models.db import database
from tasks.broker import PLACEHOLDER

broker = dramatiq.broker.global_broker
print(json.dumps({
    "attempts": attempts,
    "database": repr(database.obj),
    "broker": None if broker is PLACEHOLDER else repr(broker),
    "adapters": sorted({type(o).__name__ for o in gc.get_objects() if isinstance(o, Channel)}),
}))
"""


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> tuple[dict, Path]:
    """What importing every production module opened and built, and the directory it ran in."""
    directory = tmp_path_factory.mktemp("imports")
    names = sorted(set(production_modules()) - ENTRY_MODULES)
    assert {"api.app", "tasks", "channels", "models", "scheduler", "cli"} <= set(names)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "BROKER_URL", "DATABASE_URL"}
    }
    env.update(PYTHONPATH=str(ROOT), VAR_DIR=str(directory))
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING, json.dumps(names)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1]), directory


def test_importing_every_module_opens_nothing(imported):
    opened, directory = imported
    assert opened["attempts"] == []  # no connection, no name lookup
    assert opened["database"] == "None"  # no database bound
    assert opened["broker"] is None  # the actors wait on the placeholder
    assert list(directory.iterdir()) == []  # no SQLite file, nothing under VAR_DIR


def test_importing_every_module_builds_no_channel_adapter(imported):
    """Adapters are built on first use (``SmsChannel()`` can exit, Telegram's installs a
    logging filter)."""
    opened, _ = imported
    assert opened["adapters"] == []
