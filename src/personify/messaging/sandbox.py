"""A Jinja2 immutable sandbox with a render budget: time, loop iterations, calls and sizes.

The stock sandbox blocks unsafe attributes and mutation; this one also stops templates that
would hang or exhaust memory: every ``for`` loop and every call ticks a budget with a deadline,
``~`` concatenation, ``*``, ``**`` and ``%`` are size-checked, and filters refuse huge numbers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Namespace

from personify.domain.errors import LimitExceeded

MAX_NUMBER_ARGUMENT = 10_000
"""Largest integer a filter or string method accepts (widths, counts, lengths)."""
MAX_EXPONENT = 64
MAX_INT_BITS = 4096
"""Largest integer arithmetic may produce (about 1,233 digits): big-integer multiplication is
super-linear, so a few squarings of a huge number would outlast any clock check."""
CLOCK_EVERY_STEPS = 32
"""How often (in loop iterations and calls) the CPU clock is read."""
_BIG_FORMAT_NUMBER = re.compile(r"\d{5,}|%[^a-zA-Z%]*\*|\{[^{}]*\{")


class RenderLimitExceeded(LimitExceeded):
    """A template went over its time, iteration, call or size budget while rendering."""

    code = "render_limit_exceeded"


@dataclass
class RenderBudget:
    """Limits for one render; ``tick`` is called on every loop iteration and call.

    Time is the rendering thread's CPU time, so a busy machine or other threads holding the GIL
    do not make a normal template fail.
    """

    seconds: float = 0.5
    max_steps: int = 200_000
    max_output_chars: int = 512_000
    deadline: float = field(default=0.0)
    steps: int = 0

    def start(self) -> RenderBudget:
        self.deadline = time.thread_time() + self.seconds
        self.steps = 0
        return self

    def tick(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise RenderLimitExceeded(
                f"template took more than {self.max_steps} loop iterations and calls",
                field="template",
                accepted=f"at most {self.max_steps} steps",
            )
        if self.steps % CLOCK_EVERY_STEPS == 0 and time.thread_time() > self.deadline:
            self.expired()

    def expired(self) -> None:
        raise RenderLimitExceeded(
            f"template rendering took more than {self.seconds} s of CPU time",
            field="template",
            accepted=f"rendering within {self.seconds} s",
        )

    def check_size(self, size: int) -> None:
        if size > self.max_output_chars:
            raise RenderLimitExceeded(
                f"template output is larger than {self.max_output_chars} characters",
                field="template",
                accepted=f"at most {self.max_output_chars} characters",
            )


_current: ContextVar[RenderBudget | None] = ContextVar("personify_render_budget", default=None)


def current_budget() -> RenderBudget:
    budget = _current.get()
    if budget is None:
        raise SecurityError("templates render only through personify.messaging.templates")
    return budget


def _guarded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = current_budget()
    for value in iterable:
        budget.tick()
        yield value


def _guarded_concat(*parts: Any) -> Any:
    budget = current_budget()
    budget.check_size(sum(len(str(p)) for p in parts))
    if any(hasattr(p, "__html__") for p in parts):
        return markup_join(parts)
    return str_join(parts)


class _GuardExtension(Extension):
    """Holds the guard functions the rewritten syntax tree calls."""

    identifier = "personify.guard"

    iterate = staticmethod(_guarded_iter)
    concat = staticmethod(_guarded_concat)


def _guard_call(attr: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    func = nodes.ExtensionAttribute(_GuardExtension.identifier, attr, lineno=lineno)
    return nodes.Call(func, args, [], None, None, lineno=lineno)


def _rewrite(tree: nodes.Node) -> None:
    """Route every loop through the iteration guard and every ``~`` through the size guard."""
    for loop in tree.find_all(nodes.For):
        loop.iter = _guard_call("iterate", [loop.iter], loop.lineno)  # type: ignore[list-item]
    for node in list(tree.find_all(nodes.Concat)):
        _replace_concat(tree, node)


def _replace_concat(tree: nodes.Node, target: nodes.Concat) -> None:
    for parent in tree.find_all(nodes.Node):
        for name in parent.fields:
            value = getattr(parent, name, None)
            if value is target:
                setattr(parent, name, _guard_call("concat", list(target.nodes), target.lineno))
                return
            if isinstance(value, list):
                for i, child in enumerate(value):
                    if child is target:
                        value[i] = _guard_call("concat", list(target.nodes), target.lineno)
                        return


class _LimitedNamespace(Namespace):
    """``namespace()`` whose attributes cannot grow past the output limit."""

    def __setitem__(self, name: str, value: Any) -> None:
        if isinstance(value, (str, list, tuple, dict)):
            current_budget().check_size(len(value))
        super().__setitem__(name, value)


def _check_number(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER_ARGUMENT:
        raise RenderLimitExceeded(
            f"number {value} is too large for this operation",
            field="template",
            accepted=f"numbers up to {MAX_NUMBER_ARGUMENT}",
        )


def _check_format(fmt: Any) -> None:
    if isinstance(fmt, str) and _BIG_FORMAT_NUMBER.search(fmt):
        raise SecurityError("format strings with huge widths, '*' or nested fields are refused")


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        growth = max(len(new) - len(old), 0) * (text.count(old) if old else len(text) + 1)
        current_budget().check_size(len(text) + growth)


def _limited_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    first = 2 if hasattr(func, "jinja_pass_arg") else 1

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.tick()
        for value in (*args[first:], *kwargs.values()):
            _check_number(value)
        if name == "format" and len(args) >= first:
            _check_format(args[first - 1])
        elif name == "replace" and len(args) >= first + 2:
            _check_replace(args[first - 1], args[first], args[first + 1])
        result = func(*args, **kwargs)
        if isinstance(result, str):
            budget.check_size(len(result))
        return result

    for attr in ("jinja_pass_arg",):
        if hasattr(func, attr):
            setattr(wrapper, attr, getattr(func, attr))
    wrapper.__name__ = getattr(func, "__name__", "filter")
    return wrapper


def _join_precheck(func: Callable[..., Any]) -> Callable[..., Any]:
    """``join`` materializes its input and checks the joined size before building it."""

    def wrapper(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        budget = current_budget()
        values = list(_guarded_iter(value)) if not isinstance(value, str) else list(value)
        budget.check_size(sum(len(str(v)) for v in values) + len(str(d)) * max(len(values) - 1, 0))
        return func(eval_ctx, values, d, attribute)

    for attr in ("jinja_pass_arg",):
        if hasattr(func, attr):
            setattr(wrapper, attr, getattr(func, attr))
    return wrapper


_SIZED = (str, list, tuple)
_REMOVED_GLOBALS = ("lipsum",)
_REMOVED_FILTERS = ("pprint", "xmlattr")


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus the render budget (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        extensions = [*options.pop("extensions", ()), _GuardExtension]
        super().__init__(extensions=extensions, **options)
        for name in _REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.globals["namespace"] = _LimitedNamespace
        for name in _REMOVED_FILTERS:
            self.filters.pop(name, None)
        self.filters["join"] = _join_precheck(self.filters["join"])
        self.filters = {name: _limited_filter(name, f) for name, f in self.filters.items()}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        _rewrite(tree)
        return tree

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` / ``format_map`` are wrapped by the sandbox; refuse huge widths first."""
        if isinstance(getattr(value, "__self__", None), str) and getattr(value, "__name__", "") in (
            "format",
            "format_map",
        ):
            _check_format(value.__self__)
        return super().wrap_str_format(value)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = current_budget()
        budget.tick()
        if operator == "**":
            _check_exponent(left, right)
        elif operator == "*":
            _check_product(left, right)
            if isinstance(left, _SIZED) and isinstance(right, int):
                budget.check_size(len(left) * right)
            elif isinstance(right, _SIZED) and isinstance(left, int):
                budget.check_size(len(right) * left)
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
        elif operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
            budget.check_size(len(left) + len(right))
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.tick()
        if isinstance(getattr(__obj, "__self__", None), str):
            for value in (*args, *kwargs.values()):
                _check_number(value)
            if getattr(__obj, "__name__", "") == "replace" and len(args) >= 2:
                _check_replace(__obj.__self__, args[0], args[1])
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str):
            budget.check_size(len(result))
        return result


def _int_bits(value: Any) -> int:
    return value.bit_length() if isinstance(value, int) and not isinstance(value, bool) else 0


def _check_product(left: Any, right: Any) -> None:
    if _int_bits(left) + _int_bits(right) > MAX_INT_BITS:
        raise RenderLimitExceeded(
            "the product of these integers is too large",
            field="template",
            accepted=f"integers up to {MAX_INT_BITS} bits",
        )


def _check_exponent(base: Any, exponent: Any) -> None:
    if isinstance(exponent, (int, float)) and abs(exponent) > MAX_EXPONENT:
        raise RenderLimitExceeded(
            f"exponent {exponent} is too large",
            field="template",
            accepted=f"exponents up to {MAX_EXPONENT}",
        )
    if isinstance(base, int) and abs(base) > 2**64:
        raise RenderLimitExceeded("base of ** is too large", field="template")
    if isinstance(exponent, int) and exponent > 0 and _int_bits(base) * exponent > MAX_INT_BITS:
        raise RenderLimitExceeded(
            "the power is too large", field="template",
            accepted=f"integers up to {MAX_INT_BITS} bits",
        )


def render_limited(template: Any, variables: dict[str, Any], budget: RenderBudget) -> str:
    """Render a compiled template within ``budget``; raises :class:`RenderLimitExceeded`."""
    token = _current.set(budget.start())
    try:
        chunks: list[str] = []
        size = 0
        for count, chunk in enumerate(template.generate(variables)):
            size += len(chunk)
            budget.check_size(size)
            if count & 63 == 63 and time.thread_time() > budget.deadline:
                budget.expired()  # the clock is a system call: look at it now and then
            chunks.append(chunk)
        return "".join(chunks)
    finally:
        _current.reset(token)
