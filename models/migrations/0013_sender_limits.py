"""Per-sender rate limits: requests per minute and messages per UTC day (NULL: the settings'
API_RATE_LIMIT_PER_MINUTE and DAILY_MESSAGE_LIMIT; 0: no limit)."""

from peewee import BigIntegerField, IntegerField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("sender", "rate_limit_per_minute", IntegerField(null=True)),
        migrator.add_column("sender", "daily_message_limit", BigIntegerField(null=True)),
    )
