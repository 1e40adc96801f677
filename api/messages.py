"""``/v1/messages``: one message's state and its delivery attempts, and a letter's PDF."""

from __future__ import annotations

from uuid import UUID

from flask import Response
from flask.views import MethodView
from flask_smorest import abort

from api.auth import current_sender
from api.errors import Blueprint
from api.search_schemas import MessageDetailSchema
from channels import documents
from models.message import message_for

blp = Blueprint(
    "messages", __name__, url_prefix="/v1/messages", description="Follow single messages"
)


@blp.route("/<uuid:message_id>")
class MessageById(MethodView):
    @blp.response(200, MessageDetailSchema)
    def get(self, message_id: UUID):
        """A message with every delivery attempt; past MESSAGE_RETENTION_DAYS its destination
        and content are gone and ``retained`` is false."""
        message = message_for(current_sender(), message_id)
        if message is None:
            abort(404, message="No such message.")
        return message


@blp.route("/<uuid:message_id>/document")
class MessageDocument(MethodView):
    @blp.response(
        200,
        {"type": "string", "format": "binary"},
        content_type="application/pdf",
        description="The letter as PDF",
    )
    @blp.alt_response(404, description="No such message, or it has no document")
    def get(self, message_id: UUID):
        """The document a message was sent as: a letter's PDF, to print and post."""
        message = message_for(current_sender(), message_id)
        document_id = (message.details or {}).get("documentId") if message else None
        if message is None or document_id is None:
            abort(404, message="No such message, or it has no document.")
        try:
            document = documents.get(document_id)
        except documents.DocumentNotFound:
            abort(404, message="This message's document is no longer stored.")
        return Response(
            document.data,
            mimetype=document.content_type,
            headers={"Content-Disposition": f"inline; filename=letter-{message.id}.pdf"},
        )
