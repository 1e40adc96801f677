"""Migrations create exactly the schema the models describe, once, and record the version."""

import os

from models import ALL_MODELS, MIGRATIONS_DIR, schema_version, upgrade

LATEST = max(name[:-3] for name in os.listdir(MIGRATIONS_DIR) if name[0].isdigit())


def test_the_migrated_schema_matches_the_models(db):
    for model in ALL_MODELS:
        table = model._meta.table_name
        columns = {column.name for column in db.get_columns(table)}
        assert columns == {field.column_name for field in model._meta.sorted_fields}, table
        indexes = {index.name for index in db.get_indexes(table)}
        expected = {index._name for index in model._meta.fields_to_index()}
        assert expected <= indexes, table


def test_upgrade_is_recorded_and_idempotent(db):
    assert upgrade(db) == []
    assert schema_version(db) == LATEST
