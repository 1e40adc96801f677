"""Senders, notifications, idempotency records, messages and attempts.

The models below are a frozen copy of the schema as this migration creates it; later changes
go in later migrations, never here.
"""

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
    UUIDField,
)


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Sender(Base):
        name = CharField(max_length=100, unique=True)
        key_hash = CharField(max_length=64, unique=True)
        key_hint = CharField(max_length=16)
        is_admin = BooleanField(default=False)
        permissions = TextField()
        callback_url = TextField(null=True)
        callback_secret = TextField(null=True)
        created_at = DateTimeField()

    class Notification(Base):
        id = UUIDField(primary_key=True)
        sender = ForeignKeyField(Sender, on_delete="CASCADE", index=False)
        service_name = CharField(max_length=100, null=True)
        event = CharField(max_length=100, null=True)
        target_id = CharField(max_length=100, null=True)
        target_type = CharField(max_length=100, null=True)
        reference = CharField(max_length=255, null=True)
        content = TextField()
        created_at = DateTimeField()

        class Meta:
            indexes = ((("sender", "created_at"), False),)

    class IdempotencyRecord(Base):
        sender = ForeignKeyField(Sender, on_delete="CASCADE", index=False)
        key = CharField(max_length=255)
        fingerprint = CharField(max_length=64)
        notification = ForeignKeyField(Notification, on_delete="CASCADE")
        status_code = IntegerField(null=True)
        response = TextField(null=True)
        created_at = DateTimeField()

        class Meta:
            indexes = ((("sender", "key"), True),)

    class Message(Base):
        id = UUIDField(primary_key=True)
        notification = ForeignKeyField(Notification, on_delete="CASCADE")
        sender = ForeignKeyField(Sender, on_delete="CASCADE", index=False)
        channel = CharField(max_length=20)
        destination = TextField()
        state = CharField(max_length=16)
        failure_reason = CharField(max_length=32, null=True)
        attempts = IntegerField(default=0)
        due_at = DateTimeField(null=True)
        last_error = TextField(null=True)
        provider_id = TextField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        sent_at = DateTimeField(null=True)
        delivered_at = DateTimeField(null=True)

        class Meta:
            indexes = ((("state", "due_at"), False), (("sender", "created_at"), False))

    class Attempt(Base):
        message = ForeignKeyField(Message, on_delete="CASCADE", index=False)
        number = IntegerField()
        started_at = DateTimeField()
        finished_at = DateTimeField()
        outcome = CharField(max_length=16)
        error = TextField(null=True)
        provider_id = TextField(null=True)

        class Meta:
            indexes = ((("message", "number"), True),)

    db.create_tables([Sender, Notification, IdempotencyRecord, Message, Attempt])
