"""When a notification is sent and stops being valid, urgency, whether it needs an action, its
soft deletion; when a message was read."""

from peewee import BooleanField, DateTimeField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("notification", "send_at", DateTimeField(null=True)),
        migrator.add_column("notification", "valid_till", DateTimeField(null=True)),
        migrator.add_column("notification", "urgent", BooleanField(default=False)),
        migrator.add_column("notification", "require_action", BooleanField(default=False)),
        migrator.add_column("notification", "deleted_at", DateTimeField(null=True)),
        migrator.add_column("message", "read_at", DateTimeField(null=True)),
    )
