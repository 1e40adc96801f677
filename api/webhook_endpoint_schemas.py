"""Wire formats of webhook endpoints: a URL, and its secret shown once."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate

from channels.urlguard import MAX_URL_CHARS, UnsafeURL, check_url_syntax
from tasks.requests import CamelSchema


def check_endpoint_url(url: str) -> None:
    """The URL guard's check at accept time, as for webhook recipients."""
    try:
        check_url_syntax(url)
    except UnsafeURL as error:
        raise ValidationError(str(error)) from None


class WebhookEndpointCreateSchema(CamelSchema):
    url = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_URL_CHARS), check_endpoint_url],
        metadata={
            "description": "Where the sender's webhooks go: an https URL to a public host; "
            "webhook recipients whose URL is this one (scheme and host in any case, default "
            "port or none) are signed with this endpoint's secret",
            "example": "https://permits.example.md/herald/webhooks",
        },
    )


class WebhookEndpointRotateSchema(CamelSchema):
    """``POST /v1/webhook-endpoints/{id}/rotate``: an empty JSON object (as every POST, JSON)."""


class WebhookEndpointSchema(CamelSchema):
    id = fields.UUID()
    url = fields.String(metadata={"description": "The URL as compared (normalised)"})
    created_at = fields.AwareDateTime()
    rotated_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "When the secret was last rotated"}
    )


class WebhookEndpointSecretSchema(WebhookEndpointSchema):
    secret = fields.String(
        metadata={
            "description": "The endpoint's signing secret (whsec_ and base64), shown this once",
            "example": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        }
    )
