"""The root of the errors the channels layer raises, so a caller can catch the family."""


class ChannelError(Exception):
    """Base of the errors ``channels`` raises: an adapter's delivery errors
    (:class:`~channels.base.DeliveryError`), a destination, content or URL it refuses, a
    document it cannot find."""
