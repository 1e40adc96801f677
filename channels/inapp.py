"""In-app inbox ("cabinet"): the message is stored for its user; no provider is called."""

from __future__ import annotations

from channel_table import INAPP
from channels.base import Channel, InvalidDestination, Receipt, Rendered
from models.states import MessageState


class InAppChannel(Channel):
    row = INAPP

    def parse_destination(self, value) -> str:
        user = super().parse_destination(value)
        if len(user) > 200 or not user.isprintable():
            raise InvalidDestination("Must be a user id of at most 200 printable characters.")
        return user

    def send(self, rendered: Rendered, destination: str) -> Receipt:
        return Receipt(state=MessageState.UNREAD)
