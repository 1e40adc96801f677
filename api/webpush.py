"""``/v1/webpush``: what a browser needs to subscribe. Public: pages call it without an API key."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import fields

from api.errors import Blueprint
from channels.webpush import vapid_public_key
from tasks.requests import CamelSchema

blp = Blueprint(
    "webpush",
    __name__,
    url_prefix="/v1/webpush",
    description="Web push: the server key browsers subscribe with (no API key needed)",
)


class VapidPublicKeySchema(CamelSchema):
    public_key = fields.String(
        metadata={
            "description": "VAPID public key, base64url uncompressed P-256 point: pass it to "
            "`pushManager.subscribe({applicationServerKey})`"
        }
    )


@blp.route("/vapid-public-key")
class VapidPublicKey(MethodView):
    @blp.doc(security=[])
    @blp.response(200, VapidPublicKeySchema)
    @blp.alt_response(404, description="Web push is not configured on this server")
    def get(self):
        """The VAPID public key (``applicationServerKey``) for ``PushManager.subscribe``."""
        key = vapid_public_key()
        if not key:
            abort(404, message="Web push is not configured: VAPID keys are not set.")
        return {"public_key": key}, 200, {"Access-Control-Allow-Origin": "*"}
