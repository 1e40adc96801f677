"""Template rendering in a bounded sandbox, compiled once per (version, channel, language, part).

Text parts render unescaped; HTML parts auto-escape every value, and their links and image
addresses cannot become script URLs (:mod:`templating.secure_html`). An undefined attribute is an
error, never an empty string. Filters format dates, times and numbers in the recipient's
language. Every render has a byte and a time budget (TEMPLATE_RENDER_MAX_BYTES,
TEMPLATE_RENDER_MAX_MS; :mod:`templating.sandbox`), the same when a template is saved
(its examples), previewed and sent: this module is the one place all of them render.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from jinja2 import TemplateSyntaxError, nodes, pass_context
from jinja2.exceptions import SecurityError, UndefinedError

from channels import REGISTRY
from channels.base import InvalidContent
from models.template import DEFAULT_CHANNEL
from settings import settings
from templating.budget import RenderBudget, rendering
from templating.problem import TemplateProblem
from templating.sandbox import BoundedSandbox, instrument
from templating.secure_html import secure_html

PARTS = ("subject", "body", "html")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


class Placeholder(str):
    """An attribute's stand-in when a template is saved without a declared ``example``: it
    shows as ``<name>``, and the date, time and number filters format a sample value for it,
    so only an attribute whose example is declared is checked against those filters."""

    SAMPLE_MOMENT = datetime(2026, 12, 31, 23, 59)
    SAMPLE_NUMBER = Decimal("1234567.89")


def _when(value: Any) -> datetime | date:
    if isinstance(value, Placeholder):
        return Placeholder.SAMPLE_MOMENT
    if isinstance(value, datetime | date):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise TemplateProblem(f"{_shown(value)} is not an ISO date or datetime") from None


def _number(value: Any) -> int | float | Decimal:
    if isinstance(value, Placeholder):
        return Placeholder.SAMPLE_NUMBER
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            pass
    raise TemplateProblem(f"{_shown(value)} is not a number")


@pass_context
def _format_date(context, value, format: str = "long") -> str:
    return babel_dates.format_date(_when(value), format=format, locale=context.get("language"))


@pass_context
def _format_time(context, value, format: str = "short") -> str:
    when = _when(value)
    if not isinstance(when, datetime):
        raise TemplateProblem(f"{_shown(value)} is a date, without a time of day")
    return babel_dates.format_time(when, format=format, locale=context.get("language"))


@pass_context
def _format_datetime(context, value, format: str = "medium") -> str:
    return babel_dates.format_datetime(_when(value), format=format, locale=context.get("language"))


@pass_context
def _format_number(context, value) -> str:
    number = _number(value)
    try:
        return babel_numbers.format_decimal(number, locale=context.get("language"))
    except ArithmeticError:
        raise TemplateProblem(f"{_shown(value)} cannot be formatted as a number") from None


FILTERS = {
    "date": _format_date,
    "time": _format_time,
    "datetime": _format_datetime,
    "number": _format_number,
}
TEXT = BoundedSandbox(html=False, filters=FILTERS)
HTML = BoundedSandbox(html=True, filters=FILTERS)


def language_tag(tag: str) -> str:
    """A supported language tag in canonical form (``ro``, ``ru``, ``en``, ``ro-MD``)."""
    try:
        locale = Locale.parse(tag, sep="-")
    except (ValueError, TypeError, UnknownLocaleError):
        raise TemplateProblem(f"Unsupported language {tag!r}.") from None
    return f"{locale.language}-{locale.territory}" if locale.territory else locale.language


#: Statements that would read another template: a template stands alone.
LOADING = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


def check_source(source: str, part: str) -> nodes.Template:
    """The parsed tree of a part, or :class:`TemplateProblem` with the line number for a
    syntax error, any reach into internals (attributes or keys starting with an underscore),
    ``include``/``import``/``extends``, or, in the html part, a value where it could write
    markup or a script URL (:func:`~templating.secure_html.secure_html`, which also rewrites the
    tree to check the URLs it cannot decide now)."""
    environment = HTML if part == "html" else TEXT
    try:
        tree = environment.parse(source)
    except TemplateSyntaxError as error:
        raise TemplateProblem(f"Syntax error: {error.message}", part, error.lineno) from None
    except RecursionError:
        raise TemplateProblem("Syntax error: nested too deeply", part) from None
    except Exception as error:  # the lexer's own errors: a number too long to read, …
        raise TemplateProblem(f"Syntax error: {error}", part) from None
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        else:
            assert isinstance(node, nodes.Getitem), "find_all yields only the types it is given"
            name = getattr(node.arg, "value", "")
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateProblem(f"Access to {name!r} is not allowed", part, node.lineno)
    for loading in tree.find_all(LOADING):
        message = "A template stands alone: include, import and extends are not available"
        raise TemplateProblem(message, part, loading.lineno)
    return secure_html(tree, part, len(source)) if part == "html" else tree


def choose_content(
    contents: list[dict], channel: str, language: str | None, default_language: str
) -> dict | None:
    """The content row for a channel and language: the recipient's language first (the channel's
    own row, then the ``default`` row), then the template's default language, then any row.
    A recipient without a language (``None``) starts at the template's default language."""
    wanted = [tag for tag in (language, default_language) if tag]

    def preference(row: dict) -> tuple[int, int]:
        rank = wanted.index(row["language"]) if row["language"] in wanted else len(wanted)
        return rank, row["channel"] != channel

    rows = [row for row in contents if row["channel"] in (channel, DEFAULT_CHANNEL)]
    return min(rows, key=preference, default=None)


def missing_attributes(declared: list[dict], attributes: dict) -> list[str]:
    """Names of required attributes absent from ``attributes``."""
    return [a["name"] for a in declared if a.get("required") and a["name"] not in attributes]


def render_version(version, channel: str, language: str | None, attributes: dict) -> dict:
    """Render a template version for one channel: picks the content row, checks required
    attributes, renders. The result includes the ``language`` actually used."""
    missing = missing_attributes(version.attributes, attributes)
    if missing:
        raise TemplateProblem(f"Missing required attributes: {', '.join(missing)}.")
    content = choose_content(version.contents, channel, language, version.default_language)
    if content is None:
        raise TemplateProblem(f"No content for channel {channel!r}.")
    rendered = render_content(version.id, content, attributes, content["language"])
    return {**rendered, "language": content["language"]}


def check_use(version, recipients: list[dict], shared: dict, language: str | None) -> dict:
    """Accept-time check of a send with a template version: every recipient's channel has
    content, and every recipient has the required attributes. Returns API errors (empty: ok)."""
    errors: dict = {}
    contents: dict[tuple, dict | None] = {}
    for index, recipient in enumerate(recipients):
        channel, wanted = recipient["channel"], recipient.get("language") or language
        key = (channel, wanted)
        if channel is not None and key not in contents:  # an IDNP's channels come later
            content = contents[key] = choose_content(
                version.contents, channel, wanted, version.default_language
            )
            problem = None
            if content is None:
                wanted_language = wanted or version.default_language
                problem = f"No content for channel {channel!r} in language {wanted_language!r}."
            else:
                try:
                    REGISTRY[channel].check_content(content)
                except InvalidContent as error:
                    problem = f"Content for {channel!r} is unusable: {error.field}: {error}"
            if problem:
                errors.setdefault("template", []).append(problem)
        missing = missing_attributes(
            version.attributes, {**shared, **recipient.get("attributes", {})}
        )
        if missing:
            message = f"Missing required attributes: {', '.join(missing)}."
            errors.setdefault("recipients", {})[index] = {"attributes": [message]}
    return errors


@lru_cache(maxsize=4096)
def _compiled(key: tuple, part: str, source: str):
    tree = instrument(check_source(source, part))
    template = (HTML if part == "html" else TEXT).from_string(tree)
    # Jinja keeps a template's globals as a ChainMap over its environment's, and copies them
    # into every render's context: a plain dict (the sandboxes' globals are fixed once built)
    # copies in a fraction of the time.
    template.globals = dict(template.globals)
    return template


def render_deadline() -> float:
    """When a render starting now must be done (a :func:`time.monotonic` time)."""
    return time.monotonic() + settings.TEMPLATE_RENDER_MAX_MS / 1000


def render_content(
    version_id: Any,
    content: dict,
    attributes: dict,
    language: str,
    deadline: float | None = None,
) -> dict[str, str | None]:
    """Render one content row: ``{subject, body, html}``, all its parts together within one
    budget: TEMPLATE_RENDER_MAX_BYTES of output, until ``deadline`` (by default
    TEMPLATE_RENDER_MAX_MS from now; a save shares one deadline between its contents).

    A template is user code: whatever fails while it renders (an undefined attribute, a sandbox
    violation, a value a filter cannot format, a division by zero, a type error, recursion, a
    budget exceeded) is raised as :class:`TemplateProblem` naming the part and line. Only
    ``BaseException``s that are not ``Exception``s (a worker's time limit, an interrupt) pass
    through as they are.
    """
    context = {**attributes, "language": language.replace("-", "_")}
    budget = RenderBudget(
        settings.TEMPLATE_RENDER_MAX_BYTES,
        settings.TEMPLATE_RENDER_MAX_MS,
        deadline if deadline is not None else render_deadline(),
    )
    rendered: dict[str, str | None] = {}
    with rendering(budget):
        for part in PARTS:
            rendered[part] = _render_part(version_id, content, part, context)
    subject = rendered.get("subject")
    if subject:
        rendered["subject"] = " ".join(subject.split())
    return rendered


def _render_part(version_id: Any, content: dict, part: str, context: dict) -> str | None:
    source = content.get(part)
    if source is None:
        return None
    key = (str(version_id), content["channel"], content["language"])
    try:
        return _compiled(key, part, source).render(context)
    except Exception as error:
        raise _problem(error, part) from error


def _problem(error: Exception, part: str) -> TemplateProblem:
    """What a failed render says to the template's author."""
    if isinstance(error, TemplateSyntaxError):
        return TemplateProblem(f"Syntax error: {error.message}", part, error.lineno)
    if isinstance(error, TemplateProblem):
        if error.part:
            return error
        message = error.message
    elif isinstance(error, UndefinedError):
        message = f"Undefined attribute: {error.message}"
    elif isinstance(error, SecurityError):
        message = f"Not allowed: {error}"
    elif isinstance(error, RecursionError):
        message = "Cannot render: nested too deeply"
    else:
        message = f"Cannot render: {str(error) or type(error).__name__}"
    return TemplateProblem(message, part, _template_line(error))


def _template_line(error: Exception) -> int | None:
    """The template line being rendered when ``error`` was raised (Jinja2 rewrites tracebacks
    so that frames of template code carry the template's own line numbers)."""
    line = None
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line
