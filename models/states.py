"""Message states, failure reasons and fan-out states: the one place their names are spelled."""

from enum import StrEnum


class MessageState(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    # a fallback channel, waiting for the channel before it to fail
    HELD = "held"
    # in-app messages, once stored for their user
    UNREAD = "unread"
    READ = "read"
    DELETED = "deleted"


#: States from which ``deliver`` may claim a message.
CLAIMABLE = (MessageState.QUEUED, MessageState.RETRYING)
#: States a message never leaves on its own.
FINAL = (
    MessageState.SENT,
    MessageState.DELIVERED,
    MessageState.FAILED,
    MessageState.CANCELLED,
    MessageState.EXPIRED,
    MessageState.UNREAD,
    MessageState.READ,
    MessageState.DELETED,
)


class FailureReason(StrEnum):
    INVALID_DESTINATION = "INVALID_DESTINATION"
    DEAD_ADDRESS = "DEAD_ADDRESS"
    REJECTED_BY_PROVIDER = "REJECTED_BY_PROVIDER"
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"
    TEMPLATE_ERROR = "TEMPLATE_ERROR"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    EXPIRED = "EXPIRED"
    NO_ACTIVE_CHANNEL = "NO_ACTIVE_CHANNEL"
    THROTTLED = "THROTTLED"


class FanoutState(StrEnum):
    """How far a notification's fan-out (IDNP recipients, broadcast subscribers) has got."""

    NONE = "none"  # nothing to fan out: direct recipients or an in-app broadcast only
    PENDING = "pending"  # people left to resolve
    DONE = "done"  # all resolved (or the notification was cancelled)


class AttemptOutcome(StrEnum):
    SENT = "sent"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    DEAD_ADDRESS = "dead_address"


def notification_state(message_states: list[str], *, fanning_out: bool) -> str:
    """A notification's state, from its messages': ``pending`` while its fan-out has people
    left to resolve (``fanning_out``; their messages do not exist yet) or any message is not
    final, then ``completed`` (none failed), ``failed`` (all failed) or ``partial``."""
    if fanning_out or any(state not in FINAL for state in message_states):
        return "pending"
    failed = sum(state == MessageState.FAILED for state in message_states)
    if failed == 0:
        return "completed"
    return "failed" if failed == len(message_states) else "partial"
