"""Fixtures for channel tests: a document store of the test's own, and SMTP servers with a
handler of the test's own."""

import os

import pytest
from aiosmtpd.controller import Controller

from dev.embedded_redis import free_port
from settings import settings


@pytest.fixture
def serve(monkeypatch):
    """``serve(handler, **options)``: an aiosmtpd server with ``handler`` on 127.0.0.1 (the
    ``Controller``'s ``options``, such as ``enable_SMTPUTF8``), as the SMTP server Herald uses;
    returns the handler."""
    controllers = []

    def start(handler, **options):
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        monkeypatch.setattr(settings, "SMTP_HOST", "127.0.0.1")
        monkeypatch.setattr(settings, "SMTP_PORT", port)
        return handler

    yield start
    for controller in controllers:
        controller.stop()


class DocumentStore:
    """The test's document store directory, and what is in it."""

    def __init__(self, root: str) -> None:
        self.root = root

    def ids(self) -> set[str]:
        """Ids of the whole documents stored (a document is its bytes plus a JSON sidecar)."""
        found = set()
        for _, _, names in os.walk(self.root):
            found.update(name[: -len(".json")] for name in names if name.endswith(".json"))
        return found

    def files(self) -> list[str]:
        return [name for _, _, names in os.walk(self.root) for name in names]

    def path_of(self, name: str) -> str:
        """Where the file ``name`` (a document id, or its sidecar's name) is kept."""
        return os.path.join(self.root, name[:2], name[2:4], name)

    def read(self, document_id: str) -> bytes:
        with open(self.path_of(document_id), "rb") as file:
            return file.read()


@pytest.fixture
def document_store(tmp_path, monkeypatch) -> DocumentStore:
    """DOCUMENT_STORE_DIR in the test's temporary directory."""
    root = str(tmp_path / "documents")
    monkeypatch.setattr(settings, "DOCUMENT_STORE_DIR", root)
    return DocumentStore(root)
