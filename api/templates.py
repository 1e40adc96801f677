"""``/v1/templates``: store templates once, in several languages and channels; preview them."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError, fields, validate, validates_schema
from peewee import IntegrityError

import settings
from api.auth import current_sender
from api.errors import Blueprint
from api.pagination import PageArgs, paginate
from api.schemas import CamelSchema, language
from channels import REGISTRY
from channels.base import InvalidContent
from models.sender import Sender
from models.template import (
    DEFAULT_CHANNEL,
    Template,
    TemplateVersion,
    current_version,
    may_change,
    revise_template,
    save_template,
    template_for,
    template_in_use,
)
from tasks.templating import (
    PARTS,
    TemplateProblem,
    check_source,
    language_tag,
    render_content,
    render_version,
)

blp = Blueprint("templates", __name__, url_prefix="/v1/templates", description="Message templates")

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
    subject = fields.String(validate=[validate.Length(min=1, max=998), _part_size])
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

    @validates_schema(skip_on_field_errors=True)
    def contents_render(self, data: dict, partial=False, **kwargs) -> None:
        if "contents" in data:
            check_contents(data["contents"], data.get("attributes") or [])


class TemplateCreateSchema(TemplateWriteSchema):
    code = fields.String(required=True, validate=CODE)


class TemplatePatchSchema(TemplateWriteSchema):
    """The same fields as PUT, each optional."""


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
    with the attributes' examples. Errors name the content index, part and line."""
    errors: dict[int, dict[str, list[str]]] = {}
    seen = set()
    examples = {a["name"]: a.get("example", f"<{a['name']}>") for a in attributes}
    examples.setdefault("contact", EXAMPLE_CONTACT)
    for index, content in enumerate(contents):
        key = (content["channel"], language_tag(content["language"]))
        if key in seen:
            errors.setdefault(index, {})["language"] = ["Duplicate channel and language."]
        seen.add(key)
        try:
            for part in PARTS:
                if content.get(part) is not None:
                    check_source(content[part], part)
            rendered = render_content("check", content, examples, key[1])
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

    def get_contents(self, template: Template) -> list:
        return ContentSchema(many=True).dump(current_version(template).contents)

    def get_shared(self, template: Template) -> bool:
        return template.owner.is_admin


class TemplateListArgs(PageArgs):
    channel = fields.String()
    language = fields.String()
    category = fields.String()
    text = fields.String(validate=validate.Length(min=1, max=100))


class PreviewSchema(CamelSchema):
    attributes = fields.Dict(load_default=dict)
    language = fields.String(validate=language)
    channel = fields.String(required=True, validate=validate.OneOf(sorted(REGISTRY)))


class RenderedSchema(CamelSchema):
    subject = fields.String(allow_none=True)
    body = fields.String()
    html = fields.String(allow_none=True)
    language = fields.String()


def _visible(id_or_code: str) -> Template:
    template = template_for(current_sender(), id_or_code)
    if template is None:
        abort(404, message="No such template.")
    return template


def _changeable(id_or_code: str) -> Template:
    template = _visible(id_or_code)
    if not may_change(current_sender(), template):
        abort(403, message="Only the template's owner or an admin may change it.")
    return template


@blp.route("")
class Templates(MethodView):
    @blp.arguments(TemplateCreateSchema)
    @blp.response(201, TemplateSchema)
    @blp.alt_response(409, description="The code is taken")
    def post(self, data):
        """Create a template (version 1)."""
        data["default_language"] = language_tag(data["default_language"])
        try:
            return save_template(current_sender(), data)
        except IntegrityError:
            abort(409, message=f"A template with code {data['code']!r} exists.")

    @blp.arguments(TemplateListArgs, location="query")
    @blp.response(200, TemplateSchema(many=True))
    def get(self, args):
        """Templates this sender may use: its own and shared ones, newest first."""
        sender = current_sender()
        query = Template.select(Template).join(Sender).where(~Template.deleted)
        if not sender.is_admin:
            query = query.where((Template.owner == sender) | Sender.is_admin)
        if args.get("category"):
            query = query.where(Template.category == args["category"])
        if args.get("channel"):
            query = query.where(Template.channels.contains(f",{args['channel']},"))
        if args.get("language"):
            query = query.where(Template.languages.contains(f",{args['language']},"))
        if args.get("text"):
            text = args["text"]
            query = query.where(
                Template.code.contains(text)
                | Template.name.contains(text)
                | Template.description.contains(text)
            )
        items, headers = paginate(query.order_by(Template.created_at.desc()), args)
        return items, 200, headers


@blp.route("/<id_or_code>")
class TemplateById(MethodView):
    @blp.response(200, TemplateSchema)
    def get(self, id_or_code: str):
        """A template and the contents of its current version."""
        return _visible(id_or_code)

    @blp.arguments(TemplateWriteSchema)
    @blp.response(200, TemplateSchema)
    def put(self, data, id_or_code: str):
        """Replace the template: a new version."""
        return _revise(_changeable(id_or_code), data)

    @blp.arguments(TemplatePatchSchema(partial=True))
    @blp.response(200, TemplateSchema)
    def patch(self, data, id_or_code: str):
        """Change some fields: a new version."""
        template = _changeable(id_or_code)
        if "attributes" in data and "contents" not in data:
            try:
                check_contents(current_version(template).contents, data["attributes"])
            except ValidationError as error:
                abort(400, errors=error.messages)
        return _revise(template, data)

    @blp.response(204)
    @blp.alt_response(409, description="Scheduled notifications still use it")
    def delete(self, id_or_code: str):
        """Delete (softly: sent notifications keep their version)."""
        template = _changeable(id_or_code)
        if template_in_use(template):
            abort(409, message="Scheduled notifications or reminders still use this template.")
        template.deleted = True
        template.save(only=[Template.deleted])


@blp.route("/<id_or_code>/versions")
class TemplateVersions(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, VersionSchema(many=True))
    def get(self, args, id_or_code: str):
        """Every version, newest first."""
        template = _visible(id_or_code)
        query = TemplateVersion.select().where(TemplateVersion.template == template)
        items, headers = paginate(query.order_by(TemplateVersion.version.desc()), args)
        return items, 200, headers


@blp.route("/<id_or_code>/versions/<int:number>")
class TemplateVersionByNumber(MethodView):
    @blp.response(200, VersionSchema)
    def get(self, id_or_code: str, number: int):
        """One version, as it was saved."""
        template = _visible(id_or_code)
        version = TemplateVersion.get_or_none(
            (TemplateVersion.template == template) & (TemplateVersion.version == number)
        )
        if version is None:
            abort(404, message=f"No version {number}.")
        return version


@blp.route("/<id_or_code>/preview")
class TemplatePreview(MethodView):
    @blp.arguments(PreviewSchema)
    @blp.response(200, RenderedSchema)
    def post(self, data, id_or_code: str):
        """Render the current version for a channel and language with the given attributes."""
        template = _visible(id_or_code)
        version = current_version(template)
        try:
            return render_version(
                version, data["channel"], data.get("language"), data["attributes"]
            )
        except TemplateProblem as problem:
            abort(400, errors={"attributes": [problem.with_part()]})


def _revise(template: Template, data: dict) -> Template:
    if "default_language" in data:
        data["default_language"] = language_tag(data["default_language"])
    return revise_template(template, data)
