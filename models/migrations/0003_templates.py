"""Templates and their versions; notifications pin a template version and carry attributes;
messages carry their language and per-recipient attributes.

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
    UUIDField,
)


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Sender(Base):
        pass

    class Template(Base):
        id = UUIDField(primary_key=True)
        owner = ForeignKeyField(Sender, on_delete="CASCADE", index=False)
        code = CharField(max_length=100)
        name = CharField(max_length=200)
        description = TextField(null=True)
        category = CharField(max_length=100, null=True)
        attributes = TextField()
        default_language = CharField(max_length=16)
        current_version = IntegerField(default=1)
        channels = TextField()
        languages = TextField()
        deleted = BooleanField(default=False)
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            indexes = ((("owner", "code"), True),)

    class TemplateVersion(Base):
        id = UUIDField(primary_key=True)
        template = ForeignKeyField(Template, on_delete="CASCADE", index=False)
        version = IntegerField()
        contents = TextField()
        attributes = TextField()
        default_language = CharField(max_length=16)
        created_at = DateTimeField()

        class Meta:
            indexes = ((("template", "version"), True),)

    db.create_tables([Template, TemplateVersion])
    version = ForeignKeyField(
        TemplateVersion, null=True, on_delete="RESTRICT", field=TemplateVersion.id
    )
    migrator.migrate(
        migrator.add_column("notification", "template_version_id", version),
        migrator.add_column("notification", "attributes", TextField(null=True)),
        migrator.add_column("message", "language", CharField(max_length=16, null=True)),
        migrator.add_column("message", "attributes", TextField(null=True)),
    )
