"""The in-app inbox: in-app broadcasts (one row each), per-user state of broadcasts, the action
audit trail, server secrets (user token signing), and an index to count a user's inbox.

The models below are a frozen copy of the tables as this migration creates them.
"""

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
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
        pass

    class Notification(Base):
        id = UUIDField(primary_key=True)

    class BroadcastState(Base):
        notification = ForeignKeyField(Notification, on_delete="CASCADE")
        recipient_key = CharField(max_length=200)
        state = CharField(max_length=10)
        updated_at = DateTimeField()

        class Meta:
            indexes = ((("recipient_key", "notification"), True),)

    class NotificationAction(Base):
        notification = ForeignKeyField(Notification, on_delete="CASCADE", index=False)
        action_type = CharField(max_length=20)
        action_note = TextField(null=True)
        performed_by = CharField(max_length=200, null=True)
        recipient_key = CharField(max_length=200, null=True)
        sender = ForeignKeyField(Sender, null=True, on_delete="SET NULL", index=False)
        created_at = DateTimeField()

        class Meta:
            indexes = ((("notification", "created_at"), False),)

    class ServerSecret(Base):
        name = CharField(max_length=50, primary_key=True)
        value = TextField()
        created_at = DateTimeField()

    db.create_tables([BroadcastState, NotificationAction, ServerSecret])
    migrator.migrate(
        migrator.add_column("notification", "inbox_broadcast", BooleanField(default=False)),
        migrator.add_index("notification", ("inbox_broadcast", "created_at"), False),
        migrator.add_index("message", ("recipient_key", "channel", "state"), False),
    )
