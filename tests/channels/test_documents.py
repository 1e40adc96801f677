"""The document store on a real file system: round trips, sharding, strict ids, atomic writes."""

import json
import os

import pytest

from channels import documents


def test_a_document_comes_back_with_its_type_and_name(document_store):
    document_id = documents.put(b"%PDF-1.7 ...", "application/pdf", "Înștiințare.pdf")

    assert documents.get(document_id) == (b"%PDF-1.7 ...", "application/pdf", "Înștiințare.pdf")
    assert document_store.ids() == {document_id}


def test_documents_are_sharded_with_a_json_sidecar(document_store):
    document_id = documents.put(b"a,b\n1,2\n", "text/csv", "date.csv")

    directory = os.path.join(document_store.root, document_id[:2], document_id[2:4])
    assert sorted(os.listdir(directory)) == [document_id, f"{document_id}.json"]
    with open(os.path.join(directory, f"{document_id}.json")) as file:
        assert json.load(file) == {"contentType": "text/csv", "filename": "date.csv", "size": 8}


def test_every_document_gets_a_new_id(document_store):
    ids = {documents.put(b"same", "text/plain", "a.txt") for _ in range(20)}
    assert len(ids) == 20
    assert all(documents.is_document_id(document_id) for document_id in ids)


@pytest.mark.parametrize(
    "document_id",
    [
        "../../../../etc/passwd",
        "0123456789abcdef0123456789abcde/",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcdef.json",
        "0123456789abcdef0123456789abcdef\n",
        "",
        None,
        42,
    ],
)
def test_ids_the_store_could_not_have_made_are_not_found(document_store, document_id):
    with pytest.raises(documents.DocumentNotFound):
        documents.get(document_id)


def test_a_sidecar_beside_the_store_cannot_be_reached(document_store, tmp_path):
    (tmp_path / "secret").write_bytes(b"do not serve")
    (tmp_path / "secret.json").write_text('{"contentType": "text/plain", "filename": "x"}')
    with pytest.raises(documents.DocumentNotFound):
        documents.get("../secret")


def test_an_unknown_id_is_not_found(document_store):
    with pytest.raises(documents.DocumentNotFound):
        documents.get("0123456789abcdef0123456789abcdef")


def test_deleted_documents_are_gone(document_store):
    document_id = documents.put(b"x", "text/plain", "x.txt")
    documents.delete(document_id)
    documents.delete(document_id)  # twice is fine

    with pytest.raises(documents.DocumentNotFound):
        documents.get(document_id)
    assert document_store.files() == []


def test_a_failed_write_leaves_no_partial_file(document_store, monkeypatch):
    """The disk cannot be made to fail on cue, so the rename is made to fail instead."""
    real_replace = os.replace

    def failing_replace(source, target):
        if target.endswith(".json"):
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        documents.put(b"data", "text/plain", "a.txt")

    assert document_store.files() == []


def test_an_unwritable_store_raises_oserror(document_store):
    with open(document_store.root, "w") as file:  # a file where the directory should be
        file.write("")
    with pytest.raises(OSError):
        documents.put(b"data", "text/plain", "a.txt")
