"""Each layer roots its errors in one class, so that a handler catches a family, never a bare
``Exception`` that would also hide a programming error."""

import importlib
import inspect
import pkgutil

import pytest
from peewee import OperationalError

from api.errors import ApiError
from channels.base import InvalidDestination
from channels.documents import DocumentNotFound
from channels.errors import ChannelError
from models.crontab import CrontabError
from models.db import GroupCommitInterrupted
from models.errors import ModelError
from tasks.deliver import UnknownChannel
from tasks.errors import TaskError
from templating.problem import TemplateProblem

ROOTS = {
    "api": ApiError,
    "channels": ChannelError,
    "models": ModelError,
    "tasks": TaskError,
    "templating": TemplateProblem,
}

#: Errors that are not their layer's on purpose, and why.
OUTSIDE = {
    # An exit: it must end the process, past every ``except Exception``.
    "tasks.broker.BrokerNotConfigured",
}
#: Modules that start a process when imported: not walked.
ENTRY_MODULES = {"tasks.worker"}


def errors_defined_in(package: str) -> list[type[BaseException]]:
    modules = [importlib.import_module(package)]
    for info in pkgutil.walk_packages(modules[0].__path__, f"{package}."):
        if not info.name.endswith("__main__") and info.name not in ENTRY_MODULES:
            modules.append(importlib.import_module(info.name))
    return [
        value
        for module in modules
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == module.__name__
    ]


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_every_error_of_a_layer_derives_from_its_root(package):
    errors = errors_defined_in(package)
    assert ROOTS[package] in errors
    outside = [
        f"{error.__module__}.{error.__qualname__}"
        for error in errors
        if not issubclass(error, ROOTS[package])
    ]
    assert [name for name in outside if name not in OUTSIDE] == []


def test_the_roots_keep_the_bases_callers_catch():
    assert issubclass(CrontabError, ModelError) and issubclass(CrontabError, ValueError)
    assert issubclass(GroupCommitInterrupted, OperationalError)
    assert issubclass(InvalidDestination, ValueError)
    assert issubclass(DocumentNotFound, LookupError)
    assert issubclass(UnknownChannel, TaskError) and issubclass(UnknownChannel, LookupError)
