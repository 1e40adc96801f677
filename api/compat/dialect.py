"""What a seed dialect declares: its blueprint, how its requests are authenticated, and how
Herald's error answers are said in its words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.errors import Blueprint

#: Herald's error payload (``{"code", "status", "message", "errors"?}``) → the dialect's body.
ErrorShape = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Dialect:
    """One seed's API under ``blueprint.url_prefix``.

    ``authenticate`` runs before each of its requests (as ``api.auth.authenticate`` does for
    ``/v1``: it sets the caller or aborts); ``error_shape``, when given, rewrites every error
    answered under the prefix, routing errors (404, 405) included.
    """

    blueprint: Blueprint
    authenticate: Callable[[], None]
    error_shape: ErrorShape | None = None

    @property
    def prefix(self) -> str:
        return self.blueprint.url_prefix or ""
