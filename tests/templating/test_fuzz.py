"""Generated hostile templates (operators, filters, methods and loops over small and huge
operands): every render returns within its time budget, writes at most its byte budget and
allocates nothing near a huge value's size, or raises TemplateProblem."""

import time
import tracemalloc

from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from settings import settings
from templating.engine import TemplateProblem, render_content

MAX_BYTES, MAX_MS = 65536, 200

NUMBERS = st.sampled_from(["0", "1", "2", "n", "40", "4300", "100000", "10**6", "10**9", "-3"])
STRINGS = st.sampled_from(['"ab"', "x", '"%s"', '"%*d"', '"%.99999999f"', '"{:>99999999}"', "s"])
SEQUENCES = st.sampled_from(["[1, 2]", "[x, x, x]", "range(n)", "range(100000)", "(x, 1)"])
ATOMS = st.one_of(NUMBERS, STRINGS, SEQUENCES)


def _operation(operands):
    left, right = operands
    return st.one_of(
        st.sampled_from(["+", "*", "%", "**", "~", "-", "//"]).map(
            lambda op: f"({left} {op} {right})"
        ),
        st.sampled_from(
            [
                f"({left} | center({right}))",
                f"({left} | indent({right}))",
                f"({left} | wordwrap(2, wrapstring={right}))",
                f"({left} | replace('a', {right}))",
                f"({left} | join({right}))",
                f"({left} | batch({right}, 0) | list)",
                f"({left} | slice({right}, 0) | list)",
                f"({left} | format({right}))",
                f"({left} | tojson({right}))",
                f"({left} | list)",
                f"({left} | string)",
                f"({left} | sum)",
                f"({left}.center({right}))",
                f"({left}.replace('a', {right}))",
                f"({left}.join({right}))",
                f"({left}.format({right}, {right}))",
                f"({left}.expandtabs({right}))",
                f"({left}.zfill({right}))",
            ]
        ),
    )


EXPRESSIONS = st.recursive(
    ATOMS, lambda inner: st.tuples(inner, inner).flatmap(_operation), max_leaves=6
)


def _statement(inner):
    return st.one_of(
        st.tuples(NUMBERS, inner).map(
            lambda loop: f"{{% for i in range({loop[0]}) %}}{loop[1]}{{% endfor %}}"
        ),
        st.tuples(EXPRESSIONS, inner).map(
            lambda pair: f"{{% set ns.v = {pair[0]} %}}{pair[1]}{{{{ ns.v }}}}"
        ),
        st.tuples(inner, inner).map("".join),
    )


TEMPLATES = st.recursive(EXPRESSIONS.map(lambda e: f"{{{{ {e} }}}}"), _statement, max_leaves=5)


@given(source=TEMPLATES)
@examples(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_every_generated_template_renders_within_budget_or_raises_template_problem(
    monkeypatch, source
):
    monkeypatch.setattr(settings, "TEMPLATE_RENDER_MAX_BYTES", MAX_BYTES)
    monkeypatch.setattr(settings, "TEMPLATE_RENDER_MAX_MS", MAX_MS)
    body = "{% set ns = namespace(v=0) %}" + source
    content = {"channel": "sms", "language": "ro", "body": body}
    tracemalloc.start()
    started = time.monotonic()
    try:
        rendered = render_content("fuzz", content, {"n": 3, "x": "ab", "s": "%d"}, "ro")
    except TemplateProblem as problem:
        assert problem.part == "body" and str(problem)
    else:
        assert len(rendered["body"].encode("utf-8", "surrogatepass")) <= MAX_BYTES
    finally:
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < MAX_MS / 1000 + 5, source  # the budget, and room for a loaded machine
    assert peak < 64 * 2**20, source
