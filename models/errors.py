"""The root of the errors the models layer raises, so a caller can catch the family."""


class ModelError(Exception):
    """Base of the errors ``models`` raises about data and the rules on it (a refused resend,
    an invalid filter or crontab, a sender that exists). Peewee's own errors stay peewee's."""
