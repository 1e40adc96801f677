"""Dramatiq tasks: delivery on each channel, callbacks to senders, fan-out. Importing them opens
nothing: their actors wait on :data:`tasks.broker.PLACEHOLDER` until a process entry point (the
worker module ``tasks.worker``, the app factory, the scheduler) calls :func:`bind_broker`."""

import dramatiq

from tasks.broker import create_broker, use_broker
from tasks.callbacks import callback_actor
from tasks.deliver import ACTORS as DELIVER_ACTORS
from tasks.fanout import fanout_actor, fanout_chunk_actor

#: Every actor, by its Dramatiq name.
ACTORS: dict[str, dramatiq.Actor] = {
    actor.actor_name: actor
    for actor in (
        *DELIVER_ACTORS.values(),
        callback_actor,
        fanout_actor,
        fanout_chunk_actor,
    )
}


def bind_broker(url: str | None = None) -> dramatiq.Broker:
    """Build the broker for ``url`` (default: the configured one) and move every actor onto it;
    what a process entry point calls once."""
    broker = create_broker(url)
    use_broker(broker, list(ACTORS.values()))
    return broker


__all__ = ["ACTORS", "bind_broker"]
