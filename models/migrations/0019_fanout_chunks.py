"""Fan-out chunks (models/fanout_chunk.py): a notification's people cut into ranges when its
fan-out starts, each claimed, run and finished by a job of its own, in parallel. The
notification's ``fanout_cursor`` is no longer moved.

The model below is a frozen copy of the table as this migration creates it.
"""

from peewee import (
    AutoField,
    BigIntegerField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    UUIDField,
)


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Notification(Base):
        id = UUIDField(primary_key=True)

    class FanoutChunk(Base):
        id = AutoField()
        notification = ForeignKeyField(Notification, on_delete="CASCADE", index=False)
        number = IntegerField()
        low = BigIntegerField()
        high = BigIntegerField(null=True)
        state = CharField(max_length=10, default="pending")
        claim = CharField(max_length=32, null=True)
        lease_until = DateTimeField(null=True)
        people = IntegerField(null=True)
        messages = IntegerField(null=True)
        updated_at = DateTimeField()

        class Meta:
            indexes = (
                (("notification", "number"), True),
                (("state", "lease_until"), False),
            )

    db.create_tables([FanoutChunk])
