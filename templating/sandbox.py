"""The environment templates render in: Jinja2's immutable sandbox, bounded by the budget of
the render under way (:mod:`templating.budget`).

The bounds are enforced where template code can loop or grow a value, and before it does:

- ``+``, ``*``, ``%`` and ``**`` are intercepted (``intercepted_binops``) and refused when the
  result would be over the byte budget (a string or list repeated, a number's digits, a
  ``%`` format with its widths), so ``"x" * 10**9`` allocates nothing;
- every call (``environment.call``: macros, methods) counts one level of nesting, is refused
  beyond :data:`~templating.budget.MAX_CALL_DEPTH`, and the methods that can make much
  more than they are given (``center``, ``replace``, ``join``, ``format``, …) are sized first;
- every filter is wrapped the same way (``center``, ``indent``, ``replace``, ``batch``, …);
- ``~`` joins and every loop iteration go through the environment (the template's tree is
  rewritten by :func:`instrument`), and every output, the template's own text included, is
  counted in bytes where it is written, in macros and blocks too;
- each of those points checks the time budget, so a loop that writes nothing still stops.

The time budget is checked cooperatively, in the rendering thread: nothing fires from outside
(no signal, no asynchronous exception), so it cannot land after the render returned, nor in a
gunicorn worker's or a Dramatiq worker thread's own code. No single step between two checks is
unbounded: values are at most the byte budget, numbers at most MAX_INT_DIGITS digits.

``include``, ``import`` and ``extends`` are refused when a template is checked; the loader
refuses them too. ``lipsum`` (a pure-Python text generator) is not available.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import BaseLoader, StrictUndefined, nodes, pass_context, pass_eval_context
from jinja2.compiler import CodeGenerator
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, escape

from templating.budget import active, binop_size, text_bytes, weight
from templating.problem import TemplateProblem
from templating.secure_html import safe_url
from templating.sizes import LISTED_FILTERS, call_size, filter_size, method_owner


class NoLoader(BaseLoader):
    """A template stands alone: there is nothing to include, import or extend."""

    def get_source(self, environment, template):
        raise TemplateProblem("A template cannot include, import or extend another.")


class BudgetedCodeGenerator(CodeGenerator):
    """Jinja2's code generator, writing every output through the environment so that it is
    counted where it is written: the template's own text (``environment.charged``), each
    value (``environment.written``, which also escapes it, in place of Jinja2's ``escape``)
    and what a filter block makes of its body (``environment.counted``; the outputs of macros,
    call blocks and recursive loops are counted inside them already)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._counted_writes: list[bool] = []

    def start_write(self, frame, node=None) -> None:
        super().start_write(frame, node)
        self._counted_writes.append(isinstance(node, nodes.FilterBlock))
        if self._counted_writes[-1]:
            self.write("environment.counted(")

    def end_write(self, frame) -> None:
        if self._counted_writes.pop():
            self.write(")")
        super().end_write(frame)

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        text = "".join(map(str, group))
        return f"environment.charged({text!r}, {text_bytes(text)})"

    def _output_child_pre(self, node, frame, finalize) -> None:
        self.write("environment.written(context.eval_ctx, ")

    def _output_child_post(self, node, frame, finalize) -> None:
        self.write(")")


def _environment_call(name: str, argument: nodes.Node, lineno: int) -> nodes.Call:
    function = nodes.EnvironmentAttribute(name, lineno=lineno)
    return nodes.Call(function, [argument], [], None, None, lineno=lineno)


class _Instrument(NodeTransformer):
    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        node.iter = _environment_call("iterated", node.iter, node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Call:
        self.generic_visit(node)
        parts = nodes.List(node.nodes, lineno=node.lineno)
        return _environment_call("joined", parts, node.lineno)


def instrument(tree: nodes.Template) -> nodes.Template:
    """Rewrite a parsed template so that every loop iteration and every ``~`` goes through
    the environment (:meth:`BoundedSandbox.iterated`, :meth:`BoundedSandbox.joined`)."""
    _Instrument().visit(tree)
    return tree


def _leading_arguments(context, kind: str | None) -> tuple:
    if kind == "context":
        return (context,)
    if kind == "eval_context":
        return (context.eval_ctx,)
    if kind == "environment":
        return (context.environment,)
    return ()


def bounded_filter(name: str, function: Callable) -> Callable:
    """``function`` (filter ``name``), sized before it runs (:func:`filter_size`) and its
    result weighed after, each call checking the time budget."""
    kind = getattr(getattr(function, "jinja_pass_arg", None), "name", None)

    @pass_context
    def bounded(context, value, *args, **kwargs):
        budget = active()
        budget.tick()
        if name in LISTED_FILTERS and not isinstance(value, list | tuple | str):
            value = list(value)
        budget.allow(filter_size(name, value, args, kwargs, budget.max_bytes))
        result = function(*_leading_arguments(context, kind), value, *args, **kwargs)
        budget.weigh(result)
        return result

    bounded.__name__, bounded.__doc__ = getattr(function, "__name__", name), function.__doc__
    return bounded


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, every render bounded in bytes and in time. ``html``:
    auto-escape every value. ``filters``: more filters, bounded like the built-in ones."""

    code_generator_class = BudgetedCodeGenerator
    intercepted_binops = frozenset({"+", "*", "%", "**"})

    def __init__(self, html: bool, filters: dict[str, Callable] | None = None):
        super().__init__(
            undefined=StrictUndefined,
            autoescape=html,
            trim_blocks=True,
            lstrip_blocks=True,
            loader=NoLoader(),
        )
        self.globals.pop("lipsum", None)
        self.filters.update(filters or {})
        self.filters = {name: bounded_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        budget = active()
        budget.tick()
        budget.allow(binop_size(operator, left, right, budget.max_bytes))
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):
        budget = active()
        owner, name = method_owner(__obj)
        if isinstance(owner, str | bytes | int):
            if name == "join" and args and not isinstance(args[0], list | tuple | str | bytes):
                args = (list(args[0]), *args[1:])
            budget.allow(call_size(owner, name, args, kwargs, budget.max_bytes))
        budget.enter_call()
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.leave_call()
        budget.weigh(result)
        return result

    def iterated(self, iterable: Iterable) -> Iterator:
        """The items of a ``for`` loop, each one checking the time budget."""
        budget = active()
        for item in iterable:
            budget.tick()
            yield item

    @pass_eval_context
    def joined(self, eval_ctx, parts: list) -> str:
        """``a ~ b ~ …``, refused when the result would be over the byte budget."""
        budget = active()
        budget.allow(sum(weight(part, budget.max_bytes) for part in parts))
        return markup_join(parts) if eval_ctx.autoescape else str_join(parts)

    def written(self, eval_ctx, value: Any) -> str:
        """A value the template writes: weighed before it becomes text (escaped in an html
        part), counted after."""
        budget = active()
        budget.weigh(value)
        text = escape(value) if eval_ctx.autoescape else str(value)
        budget.write(text_bytes(text))
        return text

    def counted(self, value: Any) -> Any:
        """What a filter block writes, counted as written."""
        budget = active()
        budget.weigh(value)
        budget.write(text_bytes(str(value)))
        return value

    def charged(self, text: str, size: int) -> str:
        """The template's own ``text`` (``size`` bytes), counted as written."""
        active().write(size)
        return text

    def checked_url(self, pieces: list) -> Markup:
        """A URL attribute's value put together from the template's text and escaped values,
        replaced when it is a URL no link or image may have (:func:`safe_url`)."""
        budget = active()
        budget.allow(sum(weight(piece, budget.max_bytes) for piece in pieces))
        return safe_url(Markup("").join(pieces))
