"""The channels Herald delivers through: one row each, the one place a channel's names are spelled.

Every layer reads this table: the adapters (``channels/``), the queues and ``deliver`` actors
(``tasks/``), the search enum (``models/search.py``), the API's choices and the seed dialects'
names. It imports nothing of Herald's, so ``settings.py`` and ``models/`` may read it too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChannelRow:
    """One channel's names.

    ``name`` is the channel's name in the API, in stored messages and the adapter's;
    ``recipient_type`` the recipient ``type`` a sender addresses it with directly (also
    MNotify's, whose recipient form ``/v1`` accepts); ``settings_prefix`` names its settings
    (``<PREFIX>_MAX_RETRIES``, …); ``label`` is how prose names it; ``queue`` the Dramatiq
    queue of its ``deliver`` jobs (default: ``name``). ``in_registry``: a contact may register
    an address of this type. The dialect names: ``mambu`` its ``TYPE`` value (Mambu's own
    ``EMAIL``, ``SMS``, ``WEB_HOOK``, the others in its style), ``hackney`` its
    ``notificationType``, ``notifybc`` its ``channel``, where those services have the channel.
    """

    name: str
    recipient_type: str
    settings_prefix: str
    label: str
    mambu: str
    hackney: str | None = None
    notifybc: str | None = None
    in_registry: bool = False
    queue: str = ""

    def __post_init__(self) -> None:
        if not self.queue:
            object.__setattr__(self, "queue", self.name)

    @property
    def search_names(self) -> frozenset[str]:
        """The names a history search accepts for the channel (lower case; searches compare
        case-insensitively): Herald's, and each dialect's."""
        names = (self.name, self.mambu, self.hackney, self.notifybc)
        return frozenset(name.lower() for name in names if name)


#: name, recipient type, settings prefix, label; then the dialects' names.
EMAIL = ChannelRow(
    "email",
    "email",
    "EMAIL",
    "email",
    mambu="EMAIL",
    hackney="Email",
    notifybc="email",
    in_registry=True,
)
SMS = ChannelRow(
    "sms", "phone", "SMS", "SMS", mambu="SMS", hackney="Text", notifybc="sms", in_registry=True
)
VIBER = ChannelRow("viber", "viber", "VIBER", "Viber", mambu="VIBER", in_registry=True)
TELEGRAM = ChannelRow(
    "telegram", "telegram", "TELEGRAM", "Telegram", mambu="TELEGRAM", in_registry=True
)
WHATSAPP = ChannelRow(
    "whatsapp", "whatsapp", "WHATSAPP", "WhatsApp", mambu="WHATSAPP", in_registry=True
)
WEBPUSH = ChannelRow(
    "webpush", "webpush", "WEBPUSH", "web push", mambu="WEB_PUSH", in_registry=True
)
#: The in-app inbox (MNotify's "cabinet", Hackney's "screen"), addressed by user id or IDNP.
INAPP = ChannelRow(
    "inapp", "user", "INAPP", "in-app", mambu="IN_APP", hackney="Screen", notifybc="inApp"
)
LETTER = ChannelRow("letter", "address", "LETTER", "letter", mambu="LETTER", hackney="Letter")
WEBHOOK = ChannelRow("webhook", "webhook", "WEBHOOK", "webhook", mambu="WEB_HOOK")

#: Every channel, in the order they are listed (contact channel types, dialect names).
CHANNELS: tuple[ChannelRow, ...] = (
    EMAIL,
    SMS,
    VIBER,
    TELEGRAM,
    WHATSAPP,
    WEBPUSH,
    INAPP,
    LETTER,
    WEBHOOK,
)
CHANNELS_BY_NAME: dict[str, ChannelRow] = {row.name: row for row in CHANNELS}
#: Recipient ``type`` → channel, for recipients addressed directly.
BY_RECIPIENT_TYPE: dict[str, ChannelRow] = {row.recipient_type: row for row in CHANNELS}
