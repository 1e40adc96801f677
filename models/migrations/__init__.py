"""Numbered schema migrations, applied in order by ``herald db upgrade`` (playhouse.migrations)."""
