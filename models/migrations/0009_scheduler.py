"""The scheduler: reminders and the notifications they fire (one per reminder and occurrence),
quiet hours on contacts, how often a message was resent automatically, and when a
notification's personal data was purged.

The model below is a frozen copy of the table as this migration creates it.
"""

from peewee import (
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
        pass

    class Template(Base):
        id = UUIDField(primary_key=True)

    class Reminder(Base):
        id = UUIDField(primary_key=True)
        sender = ForeignKeyField(Sender, on_delete="CASCADE", index=False)
        template = ForeignKeyField(Template, null=True, on_delete="SET NULL")
        request = TextField()
        schedule = TextField()
        state = CharField(max_length=10, default="active")
        next_at = DateTimeField(null=True)
        fired = IntegerField(default=0)
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            indexes = ((("state", "next_at"), False), (("sender", "created_at"), False))

    db.create_tables([Reminder])
    reminder = ForeignKeyField(Reminder, null=True, on_delete="SET NULL", field=Reminder.id)
    migrator.migrate(
        migrator.add_column("notification", "reminder_id", reminder),
        migrator.add_column("notification", "occurrence_at", DateTimeField(null=True)),
        migrator.add_index("notification", ("reminder_id", "occurrence_at"), True),
        migrator.add_column("notification", "purged_at", DateTimeField(null=True)),
        migrator.add_index("notification", ("valid_till",), False),
        migrator.add_index("notification", ("purged_at", "created_at"), False),
        migrator.add_column("message", "resends", IntegerField(default=0)),
        migrator.add_column("contact", "quiet_hours", TextField(null=True)),
    )
