"""Fan-out of IDNP recipients and broadcasts: what is left to resolve and how far it got, the
channels allowed and the channel policy; messages know their place in a fallback chain."""

from peewee import BooleanField, CharField, DateTimeField, IntegerField, TextField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("notification", "channels", TextField(null=True)),
        migrator.add_column(
            "notification", "channel_policy", CharField(max_length=10, default="all")
        ),
        migrator.add_column("notification", "is_broadcast", BooleanField(default=False)),
        migrator.add_column("notification", "recipients", TextField(null=True)),
        migrator.add_column(
            "notification", "fanout_state", CharField(max_length=10, default="none")
        ),
        migrator.add_column("notification", "fanout_cursor", IntegerField(default=0)),
        migrator.add_column("notification", "fanout_updated_at", DateTimeField(null=True)),
        migrator.add_index("notification", ("fanout_state", "fanout_updated_at"), False),
        migrator.add_column("notification", "language", CharField(max_length=16, null=True)),
        migrator.add_column("message", "fallback_rank", IntegerField(null=True)),
    )
