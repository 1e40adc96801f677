"""The wire format of ``/v1/templates``, and the save-time check of a template's contents."""

from __future__ import annotations

from functools import reduce
from operator import or_

from marshmallow import ValidationError, fields, pre_dump, validate, validates_schema
from peewee import DoesNotExist

from api.pagination import PageArgs
from channels import REGISTRY
from channels.base import InvalidContent
from models.template import DEFAULT_CHANNEL, Template, TemplateVersion, current_version
from settings import settings
from tasks.requests import NO_LINE_BREAKS, CamelSchema, attributes_size, language
from templating.engine import (
    PARTS,
    Placeholder,
    TemplateProblem,
    check_source,
    language_tag,
    render_content,
    render_deadline,
)
from templating.render import UNSUBSCRIBE_URL, UNSUBSCRIBE_URL_EXAMPLE

IDENTIFIER = validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", error="Must be an identifier.")
CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", error="Letters, digits, . _ -")


def _part_size(value: str) -> None:
    if len(value.encode()) > settings.TEMPLATE_MAX_BYTES:
        raise ValidationError(f"At most {settings.TEMPLATE_MAX_BYTES} bytes.")


class AttributeSchema(CamelSchema):
    name = fields.String(required=True, validate=IDENTIFIER)
    required = fields.Boolean(load_default=False)
    description = fields.String(validate=validate.Length(max=500))
    example = fields.Raw()


class ContentSchema(CamelSchema):
    channel = fields.String(
        required=True, validate=validate.OneOf(sorted([*REGISTRY, DEFAULT_CHANNEL]))
    )
    language = fields.String(required=True, validate=language)
    subject = fields.String(validate=[validate.Length(min=1, max=998), _part_size, NO_LINE_BREAKS])
    body = fields.String(required=True, validate=[validate.Length(min=1), _part_size])
    html = fields.String(validate=[validate.Length(min=1), _part_size])


class TemplateWriteSchema(CamelSchema):
    """PUT and POST: the whole template. PATCH loads it with ``partial=True``."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=2000), allow_none=True)
    category = fields.String(validate=validate.Length(min=1, max=100), allow_none=True)
    attributes = fields.List(fields.Nested(AttributeSchema), validate=validate.Length(max=100))
    default_language = fields.String(required=True, validate=language)
    contents = fields.List(
        fields.Nested(ContentSchema), required=True, validate=validate.Length(min=1, max=60)
    )


class TemplateCreateSchema(TemplateWriteSchema):
    code = fields.String(required=True, validate=CODE)

    @validates_schema(skip_on_field_errors=True)
    def contents_render(self, data: dict, **kwargs) -> None:
        check_contents(data["contents"], data.get("attributes") or [])


class TemplatePatchSchema(TemplateWriteSchema):
    """The same fields as PUT, each optional."""


def edited_contents(template: Template, changes: dict) -> list[dict]:
    """The contents of the version an edit (PUT or PATCH) makes of ``template``: the new ones,
    or the current ones. When the edit changes contents or attributes, the contents are checked
    against the attributes the new version will have (the edit's, or the stored ones)."""
    version = current_version(template)
    contents = changes.get("contents", version.contents)
    if "contents" in changes or "attributes" in changes:
        check_contents(contents, changes.get("attributes", version.attributes))
    return contents


class _AnyKey(dict):
    """Example values for attributes a template may read but nobody declares."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"


#: What ``contact.*`` looks like when a template is checked (for IDNP recipients).
EXAMPLE_CONTACT = _AnyKey(
    name="Ion Popescu", idnp="2001234567891", language="ro", attributes=_AnyKey()
)


def check_contents(contents: list[dict], attributes: list[dict]) -> None:
    """Every part compiles, uses only declared attributes, and fits its channel when rendered
    with the attributes' examples, all contents within one render's time budget (so a save
    holds a web worker no longer than a send holds a delivery worker) and each within its byte
    budget. Errors name the content index, part and line."""
    errors: dict[int, dict[str, list[str]]] = {}
    seen, deadline = set(), render_deadline()
    examples = {
        a["name"]: a["example"] if "example" in a else Placeholder(f"<{a['name']}>")
        for a in attributes
    }
    examples.setdefault("contact", EXAMPLE_CONTACT)
    examples.setdefault(UNSUBSCRIBE_URL, UNSUBSCRIBE_URL_EXAMPLE)
    for index, content in enumerate(contents):
        key = (content["channel"], language_tag(content["language"]))
        if key in seen:
            errors.setdefault(index, {})["language"] = ["Duplicate channel and language."]
        seen.add(key)
        try:
            for part in PARTS:
                if content.get(part) is not None:
                    check_source(content[part], part)
            rendered = render_content("check", content, examples, key[1], deadline)
            if content["channel"] in REGISTRY:
                REGISTRY[content["channel"]].check_template(rendered)
        except TemplateProblem as problem:
            errors.setdefault(index, {})[problem.part or "body"] = [str(problem)]
        except InvalidContent as problem:
            errors.setdefault(index, {})[problem.field] = [str(problem)]
    if errors:
        raise ValidationError({"contents": errors})


class VersionSchema(CamelSchema):
    version = fields.Integer()
    contents = fields.List(fields.Nested(ContentSchema))
    attributes = fields.List(fields.Nested(AttributeSchema))
    default_language = fields.String()
    created_at = fields.DateTime()


class TemplateSchema(CamelSchema):
    id = fields.UUID()
    code = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    attributes = fields.List(fields.Nested(AttributeSchema))
    default_language = fields.String()
    version = fields.Integer(attribute="current_version")
    contents = fields.Method("get_contents")
    shared = fields.Method("get_shared", metadata={"description": "Owned by an admin"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    @pre_dump(pass_collection=True)
    def load_related(self, data, many: bool, **kwargs):
        """The current versions of every template dumped, in one query (not one per row)."""
        templates = list(data) if many else [data]
        with_current_versions(templates)
        return templates if many else data

    def get_contents(self, template: Template) -> list:
        return _CONTENTS.dump(template.__dict__["current_contents"])

    def get_shared(self, template: Template) -> bool:
        return template.owner.is_admin


def with_current_versions(templates: list[Template]) -> None:
    """Attach to each template its current version's contents (``current_contents``), read
    in one query for all of them."""
    wanted = {(t.id, t.current_version) for t in templates}
    if not wanted:
        return
    query = TemplateVersion.select(
        TemplateVersion.template, TemplateVersion.version, TemplateVersion.contents
    ).where(
        reduce(
            or_,
            [(TemplateVersion.template == t) & (TemplateVersion.version == v) for t, v in wanted],
        )
    )
    found = {(row.template_id, row.version): row.contents for row in query}
    for template in templates:
        key = (template.id, template.current_version)
        if key not in found:  # as current_version() would: the version must exist
            raise DoesNotExist(f"template {template.id} version {key[1]}")
        template.__dict__["current_contents"] = found[key]


_CONTENTS = ContentSchema(many=True)


class TemplateListArgs(PageArgs):
    channel = fields.String()
    language = fields.String()
    category = fields.String()
    text = fields.String(validate=validate.Length(min=1, max=100))


class PreviewSchema(CamelSchema):
    attributes = fields.Dict(load_default=dict, validate=attributes_size)
    language = fields.String(validate=language)
    channel = fields.String(required=True, validate=validate.OneOf(sorted(REGISTRY)))


class RenderedSchema(CamelSchema):
    subject = fields.String(allow_none=True)
    body = fields.String()
    html = fields.String(allow_none=True)
    language = fields.String()
