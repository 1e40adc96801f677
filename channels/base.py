"""The channel adapter contract, the delivery errors, and the helpers every adapter shares.

A channel turns a rendered message into a provider call. It never touches the database or the
queue: it returns a :class:`Receipt` or raises one of the errors below, and the ``deliver`` task
does the bookkeeping. A new channel is one module defining a :class:`Channel` subclass, plus its
row in ``channel_table`` and one line in ``channels.ADAPTERS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from channel_table import ChannelRow
from channels.errors import ChannelError
from models.states import FailureReason, MessageState
from settings import settings


@dataclass(frozen=True)
class Rendered:
    """What to say to one recipient on one channel, after templating."""

    subject: str | None
    body: str
    html: str | None = None
    action_url: str | None = None
    data: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: The notification's content as submitted, for channel-specific parts (attachments,
    #: provider templates) that are not rendered.
    content: dict[str, Any] = field(default_factory=dict)
    #: The sending sender's webhook secret, for channels that sign what they send (webhooks).
    signing_secret: str | None = field(default=None, repr=False)
    #: The secrets of the webhook endpoint registered for the destination, if any (chosen by
    #: ``tasks.deliver``); they sign instead of ``signing_secret``.
    endpoint_secrets: tuple[str, ...] = field(default=(), repr=False)
    #: Who and what the message is about, camelCase, for channels that pass it on (webhooks):
    #: ``messageId``, ``notificationId``, ``event``, ``serviceName``, ``reference``,
    #: ``targetId``, ``targetType``; and for email ``unsubscribeUrl`` and
    #: ``unsubscribeMailto`` (``channels.unsubscribe``; None where there is none).
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    """The provider's acknowledgement.

    ``provider_id`` is its id for the message; ``details`` are kept on the message (segments,
    document id, provider status); ``state`` overrides ``sent`` where a channel ends elsewhere
    (in-app messages become ``unread``).
    """

    provider_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    state: MessageState | None = None


class DeliveryError(ChannelError):
    """Base of the errors an adapter raises; ``str(error)`` is recorded on the attempt."""


class TransientError(DeliveryError):
    """Try again later; ``retry_after`` (seconds) is the provider's own delay, if it gave one."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class NotConfigured(TransientError):
    """This server has no credentials for the channel's provider, so nothing was sent.

    Transient: the API and fan-out refuse channels that are not configured, so a message gets
    here only when the configuration changed after it was accepted (or a worker runs with other
    settings than the web process). It is the server's fault, not the message's: once the
    settings are back, a retry delivers it; until then no attempt leaves the machine.
    """


class PermanentError(DeliveryError):
    """Trying again will not help; the message fails with ``reason``."""

    def __init__(self, reason: FailureReason, message: str):
        super().__init__(message)
        self.reason = reason


class DeadAddress(PermanentError):
    """The address no longer exists (unsubscribed push endpoint, blocked bot, closed account)."""

    def __init__(self, message: str):
        super().__init__(FailureReason.DEAD_ADDRESS, message)


class InvalidDestination(ChannelError, ValueError):
    """A recipient ``value`` this channel cannot deliver to; the message says why (API 400)."""


class InvalidContent(ChannelError, ValueError):
    """Message content this channel cannot send; ``field`` names the content field (API 400)."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name


class Channel:
    """An adapter to one delivery provider.

    ``row`` is the channel's row in :mod:`channel_table`, which gives its ``name`` (in the API,
    and of the Dramatiq queue its messages go through), its ``recipient_type`` (the recipient
    ``type`` a sender uses to address it directly) and its ``settings_prefix`` (which names its
    settings: ``<PREFIX>_MAX_RETRIES``, ``_MIN_BACKOFF_MS``, ``_MAX_BACKOFF_MS``,
    ``_RATE_LIMIT_PER_SECOND``). Building an adapter has no side effects: ``channels`` builds
    each on first use.
    """

    row: ClassVar[ChannelRow]
    #: Settings this server must have (non-empty) to use the channel's provider: its
    #: credentials. A channel without any (in-app, letter, webhook) is always configured.
    required_settings: ClassVar[tuple[str, ...]] = ()

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def recipient_type(self) -> str:
        return self.row.recipient_type

    @property
    def settings_prefix(self) -> str:
        return self.row.settings_prefix

    def missing_settings(self) -> list[str]:
        """The required settings this server lacks; empty when it is configured."""
        return [name for name in self.required_settings if not getattr(settings, name)]

    def is_configured(self) -> bool:
        """Whether this server can use the channel: the API refuses it and fan-out skips it
        otherwise."""
        return not self.missing_settings()

    def require_configured(self) -> None:
        """Raise :class:`NotConfigured` unless the channel is configured. :meth:`send` calls
        this before anything that could reach the network."""
        if missing := self.missing_settings():
            raise NotConfigured(f"{self.name} is not configured: {', '.join(missing)} not set")

    def parse_destination(self, value: Any) -> str:
        """Validate a recipient ``value`` at accept time and return it as stored (normalised).

        Raises :class:`InvalidDestination` with a reason a sender can act on.
        """
        if not isinstance(value, str) or not value.strip():
            raise InvalidDestination("Must be a non-empty string.")
        return value.strip()

    def check_content(self, content: dict[str, Any]) -> None:
        """Validate the notification's ``message`` for this channel at accept time.

        Raises :class:`InvalidContent` naming the field.
        """

    def check_template(self, content: dict[str, Any]) -> None:
        """Validate a template's content row for this channel when it is saved (rendered with
        the attributes' examples). By default the same as :meth:`check_content`."""
        self.check_content(content)

    def send(self, rendered: Rendered, destination: str) -> Receipt:
        """Deliver ``rendered`` to ``destination``: a :class:`Receipt`, or one of the delivery
        errors. Starts with :meth:`require_configured`."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections this adapter holds for the current thread."""


def check_text_length(text: str, limit: int, label: str, length=len) -> None:
    """The text a channel shows (subject, body, link) must be non-blank and fit ``limit``,
    measured by ``length``; otherwise an :class:`InvalidContent` on ``body``."""
    if not text.strip():
        raise InvalidContent("body", f"Must not be blank for {label} recipients.")
    if length(text) > limit:
        raise InvalidContent(
            "body", f"Too long for {label}: subject, body and link must fit in {limit} characters."
        )
