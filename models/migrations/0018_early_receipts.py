"""Provider receipts that came before their send was recorded, kept until a message carries
their provider id (models/early_receipt.py).

The model below is a frozen copy of the table as this migration creates it.
"""

from peewee import AutoField, CharField, DateTimeField, Model, TextField


def up(migrator, db):
    class EarlyReceipt(Model):
        id = AutoField()
        channel = CharField(max_length=20)
        provider_id = CharField(max_length=200)
        status = CharField(max_length=12)
        at = DateTimeField()
        failure_reason = CharField(max_length=40, null=True)
        error = TextField(null=True)
        received_at = DateTimeField()

        class Meta:
            database = db
            legacy_table_names = False
            indexes = (
                (("channel", "provider_id"), False),
                (("received_at",), False),
            )

    db.create_tables([EarlyReceipt])
