"""``/v1/templates``: store templates once, in several languages and channels; preview them.

Every version has an ETag. ``PUT`` and ``PATCH`` with ``If-Match`` apply only to the version it
names (else 412); without it, edits made at the same moment apply one after the other, each to
the version before it, as consecutive versions.
"""

from __future__ import annotations

from flask import Response, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError
from peewee import IntegrityError
from werkzeug.http import quote_etag

from api.auth import current_sender
from api.errors import Blueprint
from api.pagination import PageArgs, paginate
from api.template_schemas import (
    PreviewSchema,
    RenderedSchema,
    TemplateCreateSchema,
    TemplateListArgs,
    TemplatePatchSchema,
    TemplateSchema,
    TemplateWriteSchema,
    VersionSchema,
    edited_contents,
)
from models.message import template_in_use
from models.sender import Sender
from models.template import (
    Template,
    TemplateVersion,
    current_version,
    may_change,
    revise_template,
    save_template,
    template_for,
)
from templating.engine import TemplateProblem, language_tag, render_version
from templating.render import UNSUBSCRIBE_URL, UNSUBSCRIBE_URL_EXAMPLE

blp = Blueprint("templates", __name__, url_prefix="/v1/templates", description="Message templates")

#: Times an edit without ``If-Match`` is re-applied when other edits keep coming first.
REVISE_ATTEMPTS = 5

ETAG = {"ETag": {"description": "The current version's tag", "schema": {"type": "string"}}}
STALE = "The template has changed since the version If-Match names."
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "Change only if the template is still at this ETag's version (else 412)",
}


def etag(template: Template) -> str:
    """The strong ETag of a template's current version (unquoted, as werkzeug compares it)."""
    return f"{template.id}.{template.current_version}"


def _tagged(template: Template) -> dict[str, str]:
    return {"ETag": quote_etag(etag(template))}


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
    @blp.response(201, TemplateSchema, headers=ETAG)
    @blp.alt_response(409, description="The code is taken")
    def post(self, data):
        """Create a template (version 1)."""
        data["default_language"] = language_tag(data["default_language"])
        try:
            template = save_template(current_sender(), data)
        except IntegrityError:
            abort(409, message=f"A template with code {data['code']!r} exists.")
        return template, 201, _tagged(template)

    @blp.arguments(TemplateListArgs, location="query")
    @blp.response(200, TemplateSchema(many=True))
    def get(self, args):
        """Templates this sender may use: its own and shared ones, newest first."""
        sender = current_sender()
        # The owner's flag comes with the row (``shared``), not a query per template.
        owner = (Sender.id, Sender.is_admin)
        query = Template.select(Template, *owner).join(Sender).where(~Template.deleted)
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
    @blp.response(200, TemplateSchema, headers=ETAG)
    def get(self, id_or_code: str):
        """A template and the contents of its current version."""
        template = _visible(id_or_code)
        if request.if_none_match.contains(etag(template)):
            return Response(status=304, headers=_tagged(template))
        return template, 200, _tagged(template)

    @blp.arguments(TemplateWriteSchema)
    @blp.response(200, TemplateSchema, headers=ETAG)
    @blp.alt_response(409, description="Other edits kept coming first")
    @blp.alt_response(412, description="If-Match names another version")
    @blp.doc(parameters=[IF_MATCH])
    def put(self, data, id_or_code: str):
        """Replace the template: a new version."""
        return _revise(id_or_code, data)

    @blp.arguments(TemplatePatchSchema(partial=True))
    @blp.response(200, TemplateSchema, headers=ETAG)
    @blp.alt_response(409, description="Other edits kept coming first")
    @blp.alt_response(412, description="If-Match names another version")
    @blp.doc(parameters=[IF_MATCH])
    def patch(self, data, id_or_code: str):
        """Change some fields: a new version; the contents and attributes that result are
        checked together, whichever of them the patch gives."""
        return _revise(id_or_code, data)

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
            attributes = {UNSUBSCRIBE_URL: UNSUBSCRIBE_URL_EXAMPLE, **data["attributes"]}
            return render_version(version, data["channel"], data.get("language"), attributes)
        except TemplateProblem as problem:
            abort(400, errors={"attributes": [problem.with_part()]})


def _revise(id_or_code: str, data: dict):
    """Apply an edit as the next version: to the version ``If-Match`` names, or else to the
    current one, re-applied on the newer one when another edit came first."""
    if "default_language" in data:
        data["default_language"] = language_tag(data["default_language"])
    guarded = bool(request.if_match) and not request.if_match.star_tag
    for _ in range(REVISE_ATTEMPTS):
        template = _changeable(id_or_code)
        if guarded and not request.if_match.contains(etag(template)):
            abort(412, message=STALE)
        try:
            contents = edited_contents(template, data)
        except ValidationError as error:
            abort(400, errors=error.messages)
        if revise_template(template, data, contents) is not None:
            return template, 200, _tagged(template)
        if guarded:
            abort(412, message=STALE)
    abort(409, message="Other edits of this template kept coming first; try again.")
