"""Migration 0014 on a database of the single-key era: each sender's key moves to api_key and
keeps working; the sender table keeps no key hash."""

import os

from models import MIGRATIONS_DIR, migration_runner, upgrade
from models.sender import ApiKey, hash_key, sender_for_key
from tests.conftest import drop_all

BEFORE_KEYS = max(
    name[:-3] for name in os.listdir(MIGRATIONS_DIR) if name[0].isdigit() and name < "0014"
)


def test_each_senders_single_key_moves_to_api_key_and_keeps_working(db):
    drop_all(db)
    try:
        migration_runner(db).up(target=BEFORE_KEYS)
        for name, key in (("permits", "hk_old-permits-key"), ("crm", "hk_old-crm-key")):
            columns = '"name", "key_hash", "key_hint", "is_admin", "permissions", "created_at"'
            db.execute_sql(
                f'INSERT INTO "sender" ({columns}) VALUES ({", ".join([db.param] * 6)})',
                (name, hash_key(key), key[:10], False, "[]", "2024-01-02 03:04:05"),
            )
        assert upgrade(db)[0].startswith("0014")

        assert sender_for_key("hk_old-permits-key").name == "permits"
        assert sender_for_key("hk_old-crm-key").name == "crm"
        rows = list(ApiKey.select().order_by(ApiKey.id))
        assert [(row.prefix, row.revoked_at, row.expires_at) for row in rows] == [
            ("hk_old-per", None, None),
            ("hk_old-crm", None, None),
        ]
        assert rows[0].created_at.isoformat() == "2024-01-02T03:04:05+00:00"
        columns = {column.name for column in db.get_columns("sender")}
        assert not columns & {"key_hash", "key_hint"}
    finally:
        drop_all(db)
        upgrade(db)
