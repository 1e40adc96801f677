"""Dramatiq tasks. ``dramatiq tasks`` imports this package: it binds the database and the broker
from settings, then declares the actors on that broker."""

import dramatiq

from models.db import database, open_database
from tasks.broker import create_broker, use_broker

if database.obj is None:
    open_database()

use_broker(create_broker(), [])

from tasks.callbacks import callback_actor  # noqa: E402  (actors bind to the broker set above)
from tasks.deliver import ACTORS as DELIVER_ACTORS  # noqa: E402
from tasks.fanout import fanout_actor  # noqa: E402

#: Every actor, by its Dramatiq name.
ACTORS: dict[str, dramatiq.Actor] = {
    actor.actor_name: actor for actor in (*DELIVER_ACTORS.values(), callback_actor, fanout_actor)
}

__all__ = ["ACTORS"]
