"""Templates: what a sender stores once and sends many times, in several languages and channels.

A template's contents live in immutable versions; every change makes a new version, and a
notification pins the version it was sent with, so editing a template tomorrow does not alter
what was sent today.
"""

from __future__ import annotations

from uuid import UUID

from peewee import BooleanField, CharField, ForeignKeyField, IntegerField, TextField, UUIDField

from models.base import BaseModel, JSONField, UTCDateTimeField, new_id, utcnow
from models.db import write_transaction
from models.sender import Sender

#: The content row that serves every channel without content of its own.
DEFAULT_CHANNEL = "default"


class Template(BaseModel):
    id = UUIDField(primary_key=True, default=new_id)
    owner = ForeignKeyField(Sender, on_delete="CASCADE", index=False)
    owner_id: int  # peewee's accessor for the key's raw value
    code = CharField(max_length=100)
    name = CharField(max_length=200)
    description = TextField(null=True)
    category = CharField(max_length=100, null=True)
    attributes = JSONField(default=list, help_text="[{name, required, description, example}]")
    default_language = CharField(max_length=16)
    current_version = IntegerField(default=1)
    channels = TextField(default=",", help_text="',email,sms,' — the current version's, to filter")
    languages = TextField(default=",", help_text="',ro,ru,' — the current version's, to filter")
    deleted = BooleanField(default=False)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("owner", "code"), True),)


class TemplateVersion(BaseModel):
    """One immutable version: ``contents`` is ``[{channel, language, subject?, body, html?}]``."""

    id = UUIDField(primary_key=True, default=new_id)
    template = ForeignKeyField(Template, backref="versions", on_delete="CASCADE", index=False)
    template_id: UUID  # peewee's accessor for the key's raw value
    version = IntegerField()
    contents = JSONField()
    attributes = JSONField(default=list)
    default_language = CharField(max_length=16)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("template", "version"), True),)


def _as_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def template_for(sender: Sender, id_or_code: str) -> Template | None:
    """A live template ``sender`` may use: its own, or a shared one (owned by an admin).

    Looked up by id, or by code (the sender's own code first, then a shared one).
    """
    query = Template.select(Template).join(Sender).where(~Template.deleted)
    if not sender.is_admin:
        query = query.where((Template.owner == sender) | Sender.is_admin)
    template_id = _as_uuid(id_or_code)
    if template_id is not None:
        return query.where(Template.id == template_id).first()
    candidates = list(query.where(Template.code == id_or_code))
    own = [t for t in candidates if t.owner_id == sender.id]
    matches = own or candidates
    return matches[0] if matches else None


def may_change(sender: Sender, template: Template) -> bool:
    return sender.is_admin or template.owner_id == sender.id


def current_version(template: Template) -> TemplateVersion:
    return TemplateVersion.get(
        (TemplateVersion.template == template)
        & (TemplateVersion.version == template.current_version)
    )


def save_template(owner: Sender, fields: dict) -> Template:
    """Create a template with its first version. ``fields`` are validated (snake_case)."""
    with write_transaction():
        template = Template.create(
            owner=owner,
            code=fields["code"],
            name=fields["name"],
            description=fields.get("description"),
            category=fields.get("category"),
            attributes=fields.get("attributes", []),
            default_language=fields["default_language"],
            current_version=1,
            **_filters(fields["contents"]),
        )
        _add_version(template, fields["contents"])
    return template


def revise_template(template: Template, changes: dict, contents: list[dict]) -> Template | None:
    """Make version ``template.current_version + 1`` from ``changes`` (snake_case fields, those
    to change) and ``contents`` (the new version's, validated), if the template is still at the
    version it was read at and not deleted. ``None`` when another edit came first: read the
    template again and start over. The check and the increment are one guarded UPDATE, so
    concurrent edits never make two versions with one number."""
    number = template.current_version
    fields = {name: changes[name] for name in REVISABLE if name in changes}
    fields.update(_filters(contents), current_version=number + 1, updated_at=utcnow())
    with write_transaction():
        updated = (
            Template.update(**fields)
            .where(
                (Template.id == template.id)
                & (Template.current_version == number)
                & ~Template.deleted
            )
            .execute()
        )
        if not updated:
            return None
        for name, value in fields.items():
            setattr(template, name, value)
        _add_version(template, contents)
    return template


#: The fields of a template that an edit may change (besides its contents).
REVISABLE = ("name", "description", "category", "attributes", "default_language")


def _filters(contents: list[dict]) -> dict[str, str]:
    """The ``channels`` and ``languages`` columns for a version with ``contents``."""
    return {
        "channels": "," + ",".join(sorted({c["channel"] for c in contents})) + ",",
        "languages": "," + ",".join(sorted({c["language"] for c in contents})) + ",",
    }


def _add_version(template: Template, contents: list[dict]) -> TemplateVersion:
    return TemplateVersion.create(
        template=template,
        version=template.current_version,
        contents=contents,
        attributes=template.attributes,
        default_language=template.default_language,
    )
