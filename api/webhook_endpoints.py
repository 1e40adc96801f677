"""``/v1/webhook-endpoints``: a sender's webhook URLs, each signed with its own secret."""

from __future__ import annotations

from uuid import UUID

from flask.views import MethodView
from flask_smorest import abort

from api.auth import current_sender
from api.errors import Blueprint
from api.pagination import PageArgs, paginate
from api.webhook_endpoint_schemas import (
    WebhookEndpointCreateSchema,
    WebhookEndpointRotateSchema,
    WebhookEndpointSchema,
    WebhookEndpointSecretSchema,
)
from models.webhook_endpoint import (
    EndpointExists,
    WebhookEndpoint,
    create_endpoint,
    endpoint_for,
    endpoints_of,
    rotate_endpoint_secret,
)

blp = Blueprint(
    "webhook_endpoints",
    __name__,
    url_prefix="/v1/webhook-endpoints",
    description="Webhook endpoints: URLs whose webhooks are signed with their own secret",
)
NOT_FOUND = "No such webhook endpoint."


def _own(endpoint_id: UUID) -> WebhookEndpoint:
    endpoint = endpoint_for(current_sender(), endpoint_id)
    if endpoint is None:
        abort(404, message=NOT_FOUND)
    return endpoint


@blp.route("")
class WebhookEndpoints(MethodView):
    @blp.arguments(WebhookEndpointCreateSchema)
    @blp.response(201, WebhookEndpointSecretSchema)
    @blp.alt_response(409, description="The URL is registered already")
    def post(self, data):
        """Register a webhook URL; the answer holds its secret, shown this once."""
        try:
            return create_endpoint(current_sender(), data["url"])
        except EndpointExists:
            abort(409, message="This URL is registered already.")

    @blp.arguments(PageArgs, location="query")
    @blp.response(200, WebhookEndpointSchema(many=True))
    def get(self, args):
        """The sender's webhook endpoints, oldest first (no secrets)."""
        items, headers = paginate(endpoints_of(current_sender()), args)
        return items, 200, headers


@blp.route("/<uuid:endpoint_id>")
class WebhookEndpointById(MethodView):
    @blp.response(204)
    @blp.alt_response(404, description=NOT_FOUND)
    def delete(self, endpoint_id: UUID):
        """Unregister a webhook URL: webhooks to it are signed as to any URL again."""
        _own(endpoint_id).delete_instance()


@blp.route("/<uuid:endpoint_id>/rotate")
class WebhookEndpointRotation(MethodView):
    @blp.arguments(WebhookEndpointRotateSchema)
    @blp.response(200, WebhookEndpointSecretSchema)
    @blp.alt_response(404, description=NOT_FOUND)
    def post(self, _body, endpoint_id: UUID):
        """A new secret, shown this once; the old one goes on signing next to it for
        WEBHOOK_SECRET_GRACE_SECONDS."""
        return rotate_endpoint_secret(_own(endpoint_id))
