"""``/v1/messages``: one message's state and its delivery attempts."""

from __future__ import annotations

from uuid import UUID

from flask.views import MethodView
from flask_smorest import abort

from api.auth import current_sender
from api.errors import Blueprint
from api.schemas import MessageSchema
from models.message import message_for

blp = Blueprint(
    "messages", __name__, url_prefix="/v1/messages", description="Follow single messages"
)


@blp.route("/<uuid:message_id>")
class MessageById(MethodView):
    @blp.response(200, MessageSchema)
    def get(self, message_id: UUID):
        """A message with every delivery attempt."""
        message = message_for(current_sender(), message_id)
        if message is None:
            abort(404, message="No such message.")
        return message
