"""Links in html parts: no attribute value can make a ``javascript:`` (or any other script)
URL, and no value can write markup.

When an html part is parsed, its text is walked in source order through a small HTML
tokenizer, each ``{{ … }}`` a hole whose escaped value cannot change the tokenizer's state
(escaping removes ``<``, ``>``, quotes and ``&``). After an ``if``, the tokenizer may be in each
state a branch left it in; loops are walked until their states repeat. A value may go in text
and in quoted attribute values; it is refused where it would write a tag or attribute name or an
unquoted value (escaping does not stop ``x onclick=…`` there), and in event handlers (``on…``)
and ``srcdoc``, whose values the browser decodes and runs.

In a URL attribute (``href``, ``src``, ``action``, …) whose value the template's own text does
not already start with a scheme or a path, the whole value (the template's text and the
escaped values) is checked as it is rendered (:func:`safe_url`), read as a browser reads it:
entities decoded, tabs and newlines removed, leading spaces and controls stripped. A scheme
other than :data:`SAFE_SCHEMES` makes it :data:`BLOCKED_URL`. Such a value must be written
within one stretch of text, ``href="{{ link }}"``, without ``{% … %}`` inside it.

What a template marks ``safe`` (the ``safe`` filter, a macro's output) is the template's own
HTML and is written as it is.
"""

from __future__ import annotations

import html
import re

from jinja2 import nodes
from markupsafe import Markup

from templating.html_tokenizer import (
    CLOSED,
    IN_MARKUP,
    OPEN_URL,
    OPENED,
    SCRIPT_VALUE,
    START,
    UNQUOTED_VALUE,
    HtmlState,
    as_read,
)
from templating.problem import TemplateProblem

SAFE_SCHEMES = frozenset({"http", "https", "mailto", "tel", "sms", "cid"})
BLOCKED_URL = "about:invalid#blocked"

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")

TAG_HOLE = (
    "An expression cannot write a tag or an attribute name: "
    "put it in text or in a quoted attribute value."
)
UNQUOTED = 'An attribute value holding an expression must be quoted: name="{{ … }}".'
CODE = "An expression cannot go in an event handler (on…) or srcdoc attribute."
ONE_PIECE = (
    "A link or image address that starts with an expression must be written whole between "
    'two tags, as href="{{ link }}", without {% … %} inside it.'
)
APART = "A macro, call or set block must close the tags and attribute values it opens."
LOOP = "This loop must leave tags and attribute values as it found them."
INTRICATE = "The HTML around here is too intricate to check; simplify its conditions and loops."
ESCAPING = "Auto-escaping cannot be switched off in the html part."
REFUSED = {IN_MARKUP: TAG_HOLE, UNQUOTED_VALUE: UNQUOTED, SCRIPT_VALUE: CODE}


def safe_url(value: Markup) -> Markup:
    """``value`` (an attribute's HTML), or :data:`BLOCKED_URL` when a browser would read it as
    a URL with a scheme outside :data:`SAFE_SCHEMES` (``javascript:``, ``data:``, …)."""
    scheme = _SCHEME.match(as_read(html.unescape(str(value))))
    if scheme is None or scheme.group(1).lower() in SAFE_SCHEMES:
        return value
    return Markup(BLOCKED_URL)


#: Most tokenizer states the walk follows at once (after conditions that end differently).
MAX_STATES = 16
#: Most times a loop's body is walked to find the states it can leave.
LOOP_WALKS = 4
#: Most steps of the walk (a statement, or a character fed to the tokenizer, counting each
#: state and each walk of a loop) per character of the template: a template is walked about
#: once; this bounds the walk of one whose loops and conditions multiply it.
STEPS_PER_CHARACTER = 4


class _States:
    """The tokenizer states the html may be in at a point of the template, advanced together
    (one, most of the time; several after an ``if`` whose branches end differently)."""

    def __init__(self) -> None:
        self.live = HtmlState()
        self.others: list[HtmlState] = []
        self.steps = 0

    def snapshots(self) -> frozenset:
        return frozenset(state.snapshot() for state in (self.live, *self.others))

    def restore(self, snapshots: frozenset) -> None:
        first, *rest = sorted(snapshots, key=repr)
        self.live, self.others = HtmlState(first), [HtmlState(snapshot) for snapshot in rest]

    def feed(self, ch: str) -> str | None:
        """Advance every state; the event (:data:`OPENED`, :data:`CLOSED`) counts only when
        there is one state."""
        self.steps += 1 + len(self.others)
        event = self.live.feed(ch)
        if not self.others:
            return event
        for state in self.others:
            state.feed(ch)
        snapshots = self.snapshots()
        if len(snapshots) <= len(self.others):
            self.restore(snapshots)
        return None

    def where(self) -> set[str]:
        """Where a value written now lands, in each state."""
        return {state.where() for state in (self.live, *self.others)}


class _Walker:
    """Walks an html part's statements in source order, refusing what cannot be made safe and
    planning, per output node, which stretches are URL values to check when rendered."""

    def __init__(self, part: str, size: int) -> None:
        self.part, self.states = part, _States()
        self.max_steps = STEPS_PER_CHARACTER * size + 1000
        self.plans: dict[int, tuple[nodes.Output, tuple]] = {}

    def problem(self, message: str, node: nodes.Node) -> TemplateProblem:
        return TemplateProblem(message, self.part, node.lineno)

    def walk(self, body: list[nodes.Node]) -> None:
        for node in body:
            self.states.steps += 1 + len(self.states.others)
            if len(self.states.others) >= MAX_STATES or self.states.steps > self.max_steps:
                raise self.problem(INTRICATE, node)
            self.statement(node)

    def statement(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.Output):
            self.output(node)
        elif isinstance(node, nodes.If):
            self.branches([node.body, *(other.body for other in node.elif_), node.else_])
        elif isinstance(node, nodes.For):
            self.loop(node)
        elif isinstance(node, nodes.CallBlock):
            self.written(node)
            self.apart(node.body, node)
        elif isinstance(node, nodes.Macro | nodes.AssignBlock):
            self.apart(node.body, node)
        elif isinstance(node, nodes.EvalContextModifier):
            if any(option.key == "autoescape" for option in node.options):
                raise self.problem(ESCAPING, node)
            if isinstance(node, nodes.ScopedEvalContextModifier):
                self.walk(node.body)
        elif isinstance(node, nodes.FilterBlock | nodes.With | nodes.Scope | nodes.Block):
            self.walk(node.body)

    def written(self, node: nodes.Node) -> bool:
        """Check a value written here (``node``); returns whether its URL is to be checked."""
        places = self.states.where()
        for place in sorted(places & REFUSED.keys()):
            raise self.problem(REFUSED[place], node)
        if OPEN_URL in places and self.states.others:
            raise self.problem(ONE_PIECE, node)
        return OPEN_URL in places

    def branches(self, bodies: list[list[nodes.Node]]) -> None:
        start, ends = self.states.snapshots(), set[tuple]()
        for body in bodies:
            self.states.restore(start)
            self.walk(body)
            ends |= self.states.snapshots()
        self.states.restore(frozenset(ends))

    def loop(self, node: nodes.For) -> None:
        start = self.states.snapshots()
        seen, frontier = set(start), start
        for _ in range(LOOP_WALKS):
            self.states.restore(frontier)
            self.walk(node.body)
            frontier = self.states.snapshots() - seen
            if not frontier:
                break
            seen |= frontier
        else:
            raise self.problem(LOOP, node)
        self.states.restore(start)
        self.walk(node.else_)
        self.states.restore(frozenset(seen | self.states.snapshots()))

    def apart(self, body: list[nodes.Node], node: nodes.Node) -> None:
        outside = self.states.snapshots()
        self.states.restore(frozenset({START}))
        self.walk(body)
        if self.states.snapshots() != {START}:
            raise self.problem(APART, node)
        self.states.restore(outside)

    def output(self, node: nodes.Output) -> None:
        checks, start, check = [], None, False
        for index, child in enumerate(node.nodes):
            if isinstance(child, nodes.TemplateData):
                states = 1 + len(self.states.others)
                if self.states.steps + states * len(child.data) > self.max_steps:
                    raise self.problem(INTRICATE, child)
                for offset, ch in enumerate(child.data):
                    event = self.states.feed(ch)
                    if event == OPENED:
                        start, check = (index, offset + 1), False
                    elif event == CLOSED and start is not None:
                        checks += [(start, (index, offset))] if check else []
                        start = None
            elif self.written(child):
                if start is None:
                    raise self.problem(ONE_PIECE, child)
                check, self.states.live.prefix = True, None
        if start is not None and check:
            raise self.problem(ONE_PIECE, node)
        plan = tuple(checks)
        if self.plans.setdefault(id(node), (node, plan))[1] != plan:
            raise self.problem(ONE_PIECE, node)


def _checked_url(pieces: list[nodes.Expr]) -> nodes.Call:
    lineno = pieces[0].lineno
    parts = [
        nodes.MarkSafe(nodes.Const(piece.data), lineno=lineno)
        if isinstance(piece, nodes.TemplateData)
        else piece
        for piece in pieces
    ]
    function = nodes.EnvironmentAttribute("checked_url", lineno=lineno)
    return nodes.Call(function, [nodes.List(parts, lineno=lineno)], [], None, None, lineno=lineno)


def _apply(node: nodes.Output, checks: tuple) -> None:
    """Replace each planned stretch of ``node`` (from (child, offset) to (child, offset)) by
    one ``environment.checked_url([...])`` of its text and values."""
    cuts: dict[int, set[int]] = {}
    for (first, start), (last, end) in checks:
        cuts.setdefault(first, set()).add(start)
        cuts.setdefault(last, set()).add(end)
    pieces = []
    for index, child in enumerate(node.nodes):
        if not isinstance(child, nodes.TemplateData):
            pieces.append(((index, 0), child))
            continue
        bounds = [0, *sorted(cuts.get(index, ())), len(child.data)]
        for start, end in zip(bounds, bounds[1:], strict=False):
            if end > start:
                data = nodes.TemplateData(child.data[start:end], lineno=child.lineno)
                pieces.append(((index, start), data))
    written: list[nodes.Expr] = []
    stretch: list[nodes.Expr] = []
    current = None
    for position, piece in pieces:
        inside = next((check for check in checks if check[0] <= position < check[1]), None)
        if inside is not current and stretch:
            written.append(_checked_url(stretch))
            stretch = []
        current = inside
        (stretch if inside else written).append(piece)
    if stretch:
        written.append(_checked_url(stretch))
    node.nodes = written


def secure_html(tree: nodes.Template, part: str, size: int) -> nodes.Template:
    """Check an html part's tree (``size`` characters of source; raising
    :class:`TemplateProblem` with the line) and rewrite its undecided URL values to be checked
    when rendered."""
    walker = _Walker(part, size)
    walker.walk(tree.body)
    for node, checks in walker.plans.values():
        if checks:
            _apply(node, checks)
    return tree
