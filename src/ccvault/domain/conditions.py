"""`when_condition` expressions: a small, safe language over a profile's field values.

Parsed with Python's own grammar, then only a whitelist of node kinds is accepted
(comparisons, and/or/not, literals, field names, lists for `in`), and the tree is
evaluated by simpleeval — never by `eval`. Example: `order_type == "international" and
amount > 1000`.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from typing import Any

from simpleeval import EvalWithCompoundTypes, NameNotDefined

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,49}$")
_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.List,
    ast.Tuple,
)
MAX_LENGTH = 500


@lru_cache(maxsize=2048)
def parse_condition(text: str) -> ast.Expression:
    """Parse and vet a condition; ValueError says what is wrong (shown as a 422)."""
    if len(text) > MAX_LENGTH:
        raise ValueError(f"conditions are limited to {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid expression: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ValueError(f"{type(node).__name__} is not allowed in a condition")
        if isinstance(node, ast.Name) and not _NAME.match(node.id):
            raise ValueError(f"{node.id!r} is not a field name")
        if isinstance(node, ast.Constant) and not isinstance(
            node.value, str | int | float | bool | type(None)
        ):
            raise ValueError("only strings, numbers, booleans and None are allowed")
    return tree


@lru_cache(maxsize=2048)
def condition_fields(text: str) -> frozenset[str]:
    """Field names a condition reads."""
    return frozenset(n.id for n in ast.walk(parse_condition(text)) if isinstance(n, ast.Name))


def evaluate_condition(text: str, values: dict[str, Any]) -> bool:
    """True when the condition holds; false when it reads a field that has no value or
    compares values of incompatible types."""
    tree = parse_condition(text)
    if not condition_fields(text) <= values.keys():
        return False
    evaluator = EvalWithCompoundTypes(names=dict(values))
    try:
        return bool(evaluator.eval(text, previously_parsed=tree.body))
    except (NameNotDefined, TypeError):
        return False
