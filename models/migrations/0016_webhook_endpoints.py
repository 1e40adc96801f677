"""Webhook endpoints with their own secrets, and a sender's webhook secret apart from its
callback secret. The webhook secret starts as a copy of the callback secret (which signed both
until now), so receivers keep verifying; ``herald senders rotate-secret NAME`` then changes the
callback secret alone.

The model below is a frozen copy of the table as this migration creates it.
"""

from peewee import DateTimeField, ForeignKeyField, Model, TextField, UUIDField


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Sender(Base):
        pass

    class WebhookEndpoint(Base):
        id = UUIDField(primary_key=True)
        sender = ForeignKeyField(Sender, on_delete="CASCADE", index=False)
        url = TextField()
        secret = TextField()
        previous_secret = TextField(null=True)
        rotated_at = DateTimeField(null=True)
        created_at = DateTimeField()

        class Meta:
            indexes = ((("sender", "url"), True),)

    db.create_tables([WebhookEndpoint])
    migrator.migrate(migrator.add_column("sender", "webhook_secret", TextField(null=True)))
    db.execute_sql("UPDATE sender SET webhook_secret = callback_secret")
