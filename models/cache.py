"""A process's short-lived memory of rows it read: each entry kept ``SENDER_CACHE_SECONDS``."""

from __future__ import annotations

from time import monotonic
from typing import Any

from settings import settings


class ExpiringCache:
    """key → value, each for ``SENDER_CACHE_SECONDS`` (nothing is kept when it is 0). Bounded:
    emptied when ``max_entries`` is reached. Dict operations only, so threads may share it."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: dict[Any, tuple[Any, float]] = {}

    def get(self, key) -> Any | None:
        entry = self._entries.get(key)
        if entry and entry[1] > monotonic():
            return entry[0]
        return None

    def put(self, key, value) -> None:
        if settings.SENDER_CACHE_SECONDS <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (value, monotonic() + settings.SENDER_CACHE_SECONDS)

    def clear(self) -> None:
        self._entries.clear()
