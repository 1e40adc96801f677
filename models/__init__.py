"""Peewee models, split by aggregate, and the schema migrations that create them."""

from __future__ import annotations

import os

from peewee import Database
from playhouse.migrations import Runner

from models.action import NotificationAction
from models.callback import Callback
from models.certificate import ClientCertificate
from models.contact import Contact, ContactChannel, Subscription
from models.db import database
from models.early_receipt import EarlyReceipt
from models.fanout_chunk import FanoutChunk
from models.idempotency import IdempotencyRecord
from models.inbox import BroadcastState
from models.message import Attempt, Message
from models.notification import Notification
from models.preference import Preference
from models.reminder import Reminder
from models.sender import ApiKey, Sender
from models.server_secret import ServerSecret
from models.template import Template, TemplateVersion
from models.user_token import TokenRevocation
from models.webhook_endpoint import WebhookEndpoint

ALL_MODELS = [
    Sender,
    ApiKey,
    TokenRevocation,
    ClientCertificate,
    Contact,
    ContactChannel,
    Subscription,
    Template,
    TemplateVersion,
    Reminder,
    Notification,
    IdempotencyRecord,
    Message,
    Attempt,
    Callback,
    BroadcastState,
    NotificationAction,
    ServerSecret,
    WebhookEndpoint,
    Preference,
    EarlyReceipt,
    FanoutChunk,
]
MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")
MIGRATIONS_TABLE = "schema_migration"


def migration_runner(db: Database | None = None) -> Runner:
    return Runner(db or database.obj, directory=MIGRATIONS_DIR, table_name=MIGRATIONS_TABLE)


def upgrade(db: Database | None = None) -> list[str]:
    """Apply pending migrations in order; return the names applied (each recorded once)."""
    return migration_runner(db).up()


def schema_version(db: Database | None = None) -> str | None:
    """The newest applied migration, or None on an empty database."""
    applied = [m.name for m in migration_runner(db).status() if m.applied]
    return applied[-1] if applied else None
