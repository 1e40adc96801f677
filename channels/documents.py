"""The document store: letters (PDF) and email attachments, kept as files under
``DOCUMENT_STORE_DIR`` and addressed by an opaque id.

A document is two files in a sharded directory (``ab/cd/<id>`` and ``ab/cd/<id>.json``): the
bytes, and a JSON sidecar with its content type and original filename. Both are written to a
temporary file and renamed into place, the sidecar last, so a reader sees a whole document or
none. Who may read a document is decided by the API, not here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterable
from typing import NamedTuple

from channels.errors import ChannelError
from settings import settings

_ID = re.compile(r"^[0-9a-f]{32}$")


class Document(NamedTuple):
    data: bytes
    content_type: str
    filename: str


class DocumentNotFound(ChannelError, LookupError):
    """No document has this id (or the id is not one the store could have made)."""


def put(data: bytes, content_type: str, filename: str) -> str:
    """Store ``data`` and return its new document id. Raises OSError when the disk fails."""
    document_id = uuid.uuid4().hex
    directory = _directory(document_id)
    os.makedirs(directory, exist_ok=True)
    sidecar = {"contentType": content_type, "filename": filename, "size": len(data)}
    _write_atomically(os.path.join(directory, document_id), data)
    try:
        _write_atomically(
            os.path.join(directory, document_id + ".json"), json.dumps(sidecar).encode()
        )
    except BaseException:
        delete(document_id)
        raise
    return document_id


def get(document_id: str) -> Document:
    """The document's bytes, content type and filename.

    Raises :class:`DocumentNotFound` for an unknown or malformed id, OSError when the disk fails.
    """
    path = _path(document_id)
    try:
        with open(path + ".json", "rb") as file:
            sidecar = json.load(file)
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        raise DocumentNotFound(document_id) from None
    return Document(data, sidecar["contentType"], sidecar["filename"])


def delete(document_id: str) -> None:
    """Remove a document; an unknown id is not an error."""
    path = _path(document_id)
    for name in (path + ".json", path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(name)


def delete_all(document_ids: Iterable[str]) -> None:
    """Remove these documents (the retention purge's letters and attachments). Unknown ids,
    and values no document of this store could have as id, are not an error; a disk error is
    raised (OSError) after trying each."""
    failure = None
    for document_id in filter(is_document_id, document_ids):
        try:
            delete(document_id)
        except OSError as error:
            failure = error
    if failure is not None:
        raise failure


def is_document_id(value: object) -> bool:
    """True for a string shaped like an id this store makes (nothing else reaches the disk)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _path(document_id: str) -> str:
    if not is_document_id(document_id):
        raise DocumentNotFound(document_id)
    return os.path.join(_directory(document_id), document_id)


def _directory(document_id: str) -> str:
    return os.path.join(settings.DOCUMENT_STORE_DIR, document_id[:2], document_id[2:4])


def _write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, rename it over."""
    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
