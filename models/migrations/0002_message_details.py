"""Message.details: what the channel reported on sending (SMS segments, letter document id, …)."""

from peewee import TextField


def up(migrator, db):
    migrator.migrate(migrator.add_column("message", "details", TextField(null=True)))
