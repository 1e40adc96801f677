"""The kinds of Herald's settings: each one's type and allowed values, for ``settings.py``.

A kind reads a value from the environment's text (``parse``), says whether a value is allowed
(``valid``) and which values are (``allowed``, for error messages and the README). A kind is
the pydantic validator of the fields it annotates (``Annotated[int, Number(1, 65535)]``), so
each kind is defined here only, and the error texts are these.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

#: A rate is enforced as whole sends per whole seconds (Dramatiq's window limiter): at most
#: this many seconds per window, so 0.2/s is 1 send per 5 s and 2.5/s is 5 per 2 s.
MAX_RATE_WINDOW_SECONDS = 60


class InvalidSetting(ValueError):
    """A value given for a setting is not of its kind (type and allowed values)."""


def rate_window(rate: float) -> tuple[int, int]:
    """``rate`` sends per second as (limit, window): ``limit`` sends per ``window`` whole
    seconds, the nearest such fraction with a window of at most MAX_RATE_WINDOW_SECONDS
    (0.2 is (1, 5), 2.5 is (5, 2), 30 is (30, 1))."""
    fraction = Fraction(rate).limit_denominator(MAX_RATE_WINDOW_SECONDS)
    return max(1, fraction.numerator), fraction.denominator


def _figure(number: float) -> str:
    return f"{number:,}" if float(number).is_integer() else f"{number:g}"


def _or_empty(optional: bool, text: str) -> str:
    return f"empty or {text}" if optional else text


class Kind:
    """Any text: the base of the kinds below."""

    optional = True

    @property
    def allowed(self) -> str:
        """The values allowed, as error messages and the README say them."""
        return "any text"

    def parse(self, raw: str) -> Any:
        return raw

    def valid(self, value: Any) -> bool:
        return True

    def show(self, value: Any) -> str:
        """The value as ``herald settings`` prints it."""
        return str(value)

    def validated(self, value: Any) -> Any:
        """``value`` as a setting of this kind holds it: text (the environment's) parsed, any
        other value as given; ValueError saying what is allowed when this kind does not allow
        it."""
        if isinstance(value, str) and not (self.optional and value == ""):
            try:
                value = self.parse(value)
            except (ValueError, ZeroDivisionError):
                raise ValueError(self.allowed) from None
        if not self.valid(value):
            raise ValueError(self.allowed)
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        """As ``Annotated`` metadata, this kind is the field's whole validation."""
        return core_schema.no_info_plain_validator_function(self.validated)


class Secret:
    """``Annotated`` metadata of a setting whose value is masked wherever it is shown."""


@dataclass(frozen=True)
class Text(Kind):
    """Text of at least ``min_length`` characters besides spaces (``optional``: or empty)."""

    min_length: int = 1
    optional: bool = False

    @property
    def allowed(self) -> str:
        text = "non-empty text" if self.min_length == 1 else f"{self.min_length}+ characters"
        return _or_empty(self.optional, text)

    def valid(self, value: Any) -> bool:
        return (self.optional and value == "") or len(value.strip()) >= self.min_length


@dataclass(frozen=True)
class Pattern(Kind):
    """Text matching ``regex`` (``optional``: or empty), described as ``what``."""

    regex: str
    what: str
    optional: bool = False

    @property
    def allowed(self) -> str:
        return _or_empty(self.optional, self.what)

    def valid(self, value: Any) -> bool:
        return (self.optional and value == "") or re.fullmatch(self.regex, value) is not None


@dataclass(frozen=True)
class Number(Kind):
    """An integer (with ``cast=float``: a number) from ``low`` to ``high`` (``optional``: or
    empty)."""

    low: float
    high: float
    cast: type = int
    optional: bool = False

    @property
    def allowed(self) -> str:
        noun = "an integer" if self.cast is int else "a number"
        return _or_empty(self.optional, f"{noun} from {_figure(self.low)} to {_figure(self.high)}")

    def parse(self, raw: str) -> Any:
        return self.cast(raw.strip())

    def valid(self, value: Any) -> bool:
        if self.optional and value == "":
            return True
        return math.isfinite(value) and self.low <= value <= self.high


@dataclass(frozen=True)
class Rate(Kind):
    """Sends per second: 0 (no limit), or from 1/MAX_RATE_WINDOW_SECONDS to ``high`` as whole
    sends per whole seconds: 0.2 (1 per 5 s), 2.5 (5 per 2 s), or a fraction: 1/3."""

    high: float = 10000
    optional: bool = False

    @property
    def allowed(self) -> str:
        return (
            f"0 (no limit) or from 1/{MAX_RATE_WINDOW_SECONDS} to {_figure(self.high)}, as whole "
            f"sends per at most {MAX_RATE_WINDOW_SECONDS} s (0.2, 2.5, 1/3)"
        )

    def parse(self, raw: str) -> float:
        return float(Fraction(raw.strip()))

    def valid(self, value: Any) -> bool:
        if value == 0:
            return True
        if not (math.isfinite(value) and 1 / MAX_RATE_WINDOW_SECONDS <= value <= self.high):
            return False
        limit, window = rate_window(value)
        return math.isclose(limit / window, value, rel_tol=1e-9)


@dataclass(frozen=True)
class Choice(Kind):
    """One of ``choices``, written in any case; kept as spelled in ``choices``."""

    choices: tuple[str, ...]
    optional: bool = False

    @property
    def allowed(self) -> str:
        return "one of: " + ", ".join(self.choices)

    def parse(self, raw: str) -> str:
        return {choice.lower(): choice for choice in self.choices}.get(raw.strip().lower(), raw)

    def valid(self, value: Any) -> bool:
        return value in self.choices


@dataclass(frozen=True)
class Url(Kind):
    """A URL with one of ``schemes`` (``optional``: or empty). sqlite, unix and mailto URLs
    name a path or an address; the others a host."""

    schemes: tuple[str, ...]
    optional: bool = False

    @property
    def allowed(self) -> str:
        schemes = (f"{s}:" if s == "mailto" else f"{s}://" for s in self.schemes)
        return _or_empty(self.optional, "a URL: " + ", ".join(schemes))

    def valid(self, value: Any) -> bool:
        if self.optional and value == "":
            return True
        try:
            url = urlsplit(value)
            url.port  # noqa: B018  (raises ValueError for a port that is not one)
        except ValueError:
            return False
        if url.scheme not in self.schemes:
            return False
        if url.scheme in {"sqlite", "unix"}:
            return not url.netloc and len(url.path) > 1
        if url.scheme == "mailto":
            return "@" in url.path
        return bool(url.hostname)

    def show(self, value: Any) -> str:
        password = urlsplit(value).password
        return value.replace(f":{password}@", ":***@", 1) if password else value


def networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks of a comma-separated list of IP addresses and CIDRs (ValueError if one is
    not)."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


@dataclass(frozen=True)
class Networks(Kind):
    """Comma-separated IP addresses and CIDR networks (``10.0.0.0/8, 192.0.2.7``), or empty."""

    optional = True

    @property
    def allowed(self) -> str:
        return "empty or comma-separated IP addresses and CIDRs"

    def parse(self, raw: str) -> str:
        networks(raw)
        return raw.strip()

    def valid(self, value: Any) -> bool:
        try:
            networks(value)
        except (TypeError, ValueError, AttributeError):
            return False
        return True


@dataclass(frozen=True)
class Flag(Kind):
    """true or false (also 1/0, yes/no, on/off)."""

    optional = False

    @property
    def allowed(self) -> str:
        return "true or false (1/0, yes/no, on/off)"

    def parse(self, raw: str) -> bool:
        value = raw.strip().lower()
        if value in {"1", "true", "yes", "on"}:
            return True
        if value in {"0", "false", "no", "off"}:
            return False
        raise ValueError(raw)

    def valid(self, value: Any) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class Setting:
    """One setting: its environment variable ``name``, default, kind and meaning; ``secret``
    ones are masked when shown. ``path`` is the attributes that lead to its value in the
    settings (``("SMS", "MAX_RETRIES")`` for SMS_MAX_RETRIES)."""

    name: str
    default: Any
    meaning: str
    kind: Kind
    secret: bool
    path: tuple[str, ...]

    def read(self, raw: str) -> Any:
        """The value that ``raw`` (the environment's text) gives; InvalidSetting when the kind
        does not allow it."""
        try:
            return self.kind.validated(raw)
        except ValueError:
            raise InvalidSetting(self.refusal(raw)) from None

    def refusal(self, raw: str) -> str:
        """Why ``raw`` is refused: this setting's name, the value (a secret's masked) and the
        values allowed."""
        shown = "***" if self.secret else raw
        return f"{self.name}={shown!r} is not {self.kind.allowed}"

    def show(self, value: Any) -> str:
        """``value`` as ``herald settings`` prints it, a secret masked."""
        return "***" if self.secret and value else self.kind.show(value)
