"""The root of the errors the tasks layer raises, so a caller can catch the family."""


class TaskError(Exception):
    """Base of the errors ``tasks`` raises about the work it is given (a message no actor can
    deliver, a submission it refuses); broker errors stay the broker's
    (:data:`tasks.broker.BROKER_ERRORS`)."""
