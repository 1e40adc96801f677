"""Retention beyond notifications: idempotency records expire (the index their expiry reads in
creation order), and a reminder's request is purged once it ended (when it was, and the index
that finds the ended reminders not purged yet)."""

from peewee import DateTimeField


def up(migrator, db):
    migrator.migrate(
        migrator.add_index("idempotency_record", ("created_at",), False),
        migrator.add_column("reminder", "purged_at", DateTimeField(null=True)),
        migrator.add_index("reminder", ("state", "purged_at", "updated_at"), False),
    )
