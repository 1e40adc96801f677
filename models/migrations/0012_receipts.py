"""Receipts find their message by the id its provider gave it."""


def up(migrator, db):
    migrator.migrate(migrator.add_index("message", ("channel", "provider_id"), False))
