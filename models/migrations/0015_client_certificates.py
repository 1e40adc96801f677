"""Client certificates bound to senders (by the SHA-256 fingerprint of their DER), and the
sender's choice to require one as well as its API key.

The model below is a frozen copy of the table as this migration creates it.
"""

from peewee import AutoField, BooleanField, CharField, DateTimeField, ForeignKeyField, Model


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Sender(Base):
        pass

    class ClientCertificate(Base):
        id = AutoField()
        sender = ForeignKeyField(Sender, on_delete="CASCADE")
        fingerprint = CharField(max_length=64, unique=True)
        subject = CharField(max_length=500)
        not_after = DateTimeField()
        created_at = DateTimeField()

    db.create_tables([ClientCertificate])
    migrator.migrate(
        migrator.add_column("sender", "require_certificate", BooleanField(default=False))
    )
