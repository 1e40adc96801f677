"""Several API keys per sender, and revocable user tokens: each sender's one key hash moves to
``api_key`` (so existing keys keep working), and ``token_revocation`` refuses user tokens
minted before a time.

The models below are a frozen copy of the tables as this migration creates them.
"""

from datetime import UTC, datetime

from peewee import AutoField, CharField, DateTimeField, ForeignKeyField, Model


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Sender(Base):
        key_hash = CharField(max_length=64)
        key_hint = CharField(max_length=16)
        created_at = DateTimeField()

    class ApiKey(Base):
        id = AutoField()
        sender = ForeignKeyField(Sender, on_delete="CASCADE")
        key_hash = CharField(max_length=64, unique=True)
        prefix = CharField(max_length=16)
        created_at = DateTimeField()
        last_used_at = DateTimeField(null=True)
        expires_at = DateTimeField(null=True)
        revoked_at = DateTimeField(null=True)

    class TokenRevocation(Base):
        id = AutoField()
        user = CharField(max_length=200, null=True, index=True)
        sender = ForeignKeyField(Sender, null=True, on_delete="CASCADE", index=False)
        not_before = DateTimeField()
        created_at = DateTimeField()

    db.create_tables([ApiKey, TokenRevocation])
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {"sender": sender_id, "key_hash": key_hash, "prefix": hint, "created_at": created or now}
        for sender_id, key_hash, hint, created in Sender.select(
            Sender.id, Sender.key_hash, Sender.key_hint, Sender.created_at
        ).tuples()
    ]
    for start in range(0, len(rows), 500):
        ApiKey.insert_many(rows[start : start + 500]).execute()
    migrator.migrate(
        migrator.drop_index("sender", "sender_key_hash"),
        migrator.drop_column("sender", "key_hash"),
        migrator.drop_column("sender", "key_hint"),
    )
