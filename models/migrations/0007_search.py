"""History search: the rendered subject and body kept on each message (until retention ends),
and the indexes the typical searches use (state + channel + date, event, service, target)."""

from peewee import TextField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("message", "subject", TextField(null=True)),
        migrator.add_column("message", "body", TextField(null=True)),
        migrator.add_index("message", ("created_at",), False),
        migrator.add_index("message", ("state", "channel", "created_at"), False),
        migrator.add_index("message", ("notification_id", "sender_id"), False),
        migrator.add_index("notification", ("event", "created_at"), False),
        migrator.add_index("notification", ("service_name", "created_at"), False),
        migrator.add_index("notification", ("target_id", "target_type"), False),
        migrator.add_index("notification", ("reference",), False),
    )
