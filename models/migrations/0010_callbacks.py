"""Delivery callbacks owed to senders, stored with the outcome that causes them so that a broker
outage or a lost job cannot lose one (the replay job enqueues them again).

The model below is a frozen copy of the table as this migration creates it.
"""

from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, Model, UUIDField


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Message(Base):
        id = UUIDField(primary_key=True)

    class Callback(Base):
        id = UUIDField(primary_key=True)
        message = ForeignKeyField(Message, on_delete="CASCADE")
        state = CharField(max_length=16)
        failure_reason = CharField(max_length=32, null=True)
        attempts = IntegerField(default=0)
        due_at = DateTimeField()
        enqueued_at = DateTimeField()
        created_at = DateTimeField()

        class Meta:
            indexes = ((("due_at",), False),)

    db.create_tables([Callback])
