"""The contact registry: contacts, their channels and subscriptions; messages remember the
contact they were resolved for and the recipient key (IDNP or user id) for history searches.

The models below are a frozen copy of the tables as this migration creates them.
"""

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Contact(Base):
        idnp = CharField(max_length=13, unique=True)
        name = CharField(max_length=200, null=True)
        preferred_language = CharField(max_length=16, null=True)
        attributes = TextField()
        created_at = DateTimeField()
        updated_at = DateTimeField()

    class ContactChannel(Base):
        contact = ForeignKeyField(Contact, on_delete="CASCADE", index=False)
        type = CharField(max_length=20)
        address = TextField()
        active = BooleanField(default=True)
        priority = IntegerField(default=100)
        deactivated_reason = TextField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            indexes = ((("contact", "type", "address"), True),)

    class Subscription(Base):
        contact = ForeignKeyField(Contact, on_delete="CASCADE", index=False)
        service_name = CharField(max_length=100)
        created_at = DateTimeField()

        class Meta:
            indexes = ((("contact", "service_name"), True), (("service_name", "contact"), False))

    db.create_tables([Contact, ContactChannel, Subscription])
    contact = ForeignKeyField(Contact, null=True, on_delete="SET NULL", field=Contact.id)
    migrator.migrate(
        migrator.add_column("message", "contact_id", contact),
        migrator.add_column("message", "recipient_key", CharField(max_length=200, null=True)),
        migrator.add_index("message", ("recipient_key", "created_at"), False),
    )
