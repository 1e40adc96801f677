"""Preferences: a person's channel opt-outs, everywhere or per service (``preference``), a
notification's ``critical`` flag (it bypasses them, for a sender granted ``send_critical``) and,
on each message, whether it went despite an opt-out; an index to find who owns a direct
recipient's address.

The model below is a frozen copy of the table as this migration creates it.
"""

from peewee import AutoField, BooleanField, CharField, DateTimeField, Model


def up(migrator, db):
    class Preference(Model):
        id = AutoField()
        subject_kind = CharField(max_length=10)
        subject = CharField(max_length=400)
        service = CharField(max_length=100, default="")
        channel = CharField(max_length=20)
        enabled = BooleanField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            legacy_table_names = False
            indexes = ((("subject_kind", "subject", "service", "channel"), True),)

    db.create_tables([Preference])
    migrator.migrate(
        migrator.add_column("notification", "critical", BooleanField(default=False)),
        migrator.add_column("message", "opt_out_bypassed", BooleanField(null=True)),
        migrator.add_index("contact_channel", ("type", "address"), False),
    )
