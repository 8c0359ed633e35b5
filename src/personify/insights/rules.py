"""The segment rule language: a JSON form and a readable text form of the same tree, validated
against the known fields (name and type) before it is stored, evaluated against a person's facts.

Text form::

    churn_risk > 0.7 and rfm.tier in ["champions", "loyal"]
    viewed_categories_7d has "shoes" and purchases_7d = 0
    not segment("vip") or (lifecycle = "returning" and profile.country = "RS")

Grammar: ``expr := and ("or" and)*``, ``and := unary ("and" unary)*``,
``unary := "not" unary | "(" expr ")" | "segment" "(" STRING ")" | FIELD OP VALUE |
FIELD "in" "[" VALUE ("," VALUE)* "]" | FIELD "has" VALUE``; ``OP`` is one of
``= != > >= < <=``; values are numbers, "strings" or 'strings', ``true`` / ``false``.

JSON form: ``{"and": [r, ...]}``, ``{"or": [r, ...]}``, ``{"not": r}``, ``{"segment": "vip"}``,
``{"field": "churn_risk", "op": ">", "value": 0.7}`` (ops as above plus ``in`` and ``has``).

A comparison with a value the person does not have (no purchase yet, no prediction) is false.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from personify.domain.errors import InvalidInput

FieldType = Literal["number", "string", "set", "bool"]

FIELDS: dict[str, tuple[FieldType, str]] = {
    "lifecycle": ("string", "new, active, at_risk, lapsed or returning"),
    "rfm.tier": ("string", "champions, loyal, potential_loyalists, new_customers, promising, "
                           "need_attention, about_to_sleep, cannot_lose, at_risk, hibernating"),
    "rfm.r": ("number", "recency score 1-5"),
    "rfm.f": ("number", "frequency score 1-5"),
    "rfm.m": ("number", "monetary score 1-5"),
    "recency_days": ("number", "days since the last purchase"),
    "frequency": ("number", "purchase days"),
    "monetary": ("number", "total spend"),
    "price.label": ("string", "bargain_hunter, neutral or premium"),
    "price.discount_share": ("number", "share of purchases at a discount, 0-1"),
    "p_alive": ("number", "BG/NBD probability of being active, 0-1"),
    "clv_90d": ("number", "predicted spend in 90 days"),
    "expected_purchases_90d": ("number", "BG/NBD expected purchase days in 90 days"),
    "churn_risk": ("number", "probability of no purchase in 90 days, 0-1"),
    "purchase_propensity": ("number", "probability of a purchase in 30 days, 0-1"),
    "top_categories": ("set", "the person's strongest category affinities"),
    "channel": ("string", "preferred channel"),
    "device": ("string", "preferred device"),
    "cluster": ("string", "the person's automatic cluster (c1, c2 ...; insights fit --clusters)"),
    "purchases_7d": ("number", "purchase events in the last 7 days"),
    "purchases_30d": ("number", "purchase events in the last 30 days"),
    "views_7d": ("number", "view events in the last 7 days"),
    "viewed_categories_7d": ("set", "categories of items viewed in the last 7 days"),
    "bought_categories_30d": ("set", "categories of items bought in the last 30 days"),
    "item_topics": ("set", "topics (the tenant's categories) of the texts of the items the "
                           "person bought, carted or viewed most recently (up to 50 items)"),
    "item_keywords": ("set", "keywords of the texts of those items"),
    "item_emotions": ("set", "emotions of the texts of those items (neutral left out)"),
    "profile.country": ("string", "profile country"),
    "profile.city": ("string", "profile city"),
    "profile.language": ("string", "profile language"),
    "profile.industry": ("string", "profile industry"),
    "profile.profession": ("string", "profile profession"),
    "profile.skills": ("set", "profile skills"),
    "profile.interests": ("set", "profile interests"),
    "profile.goals": ("set", "profile goals"),
    "profile.keywords": ("set", "keywords of the profile's bio (RU / EN)"),
    "restricted": ("bool", "processing restricted"),
    "texts": ("number", "texts the person wrote (events with a text, newest 200)"),
    "language": ("string", "main language of the person's texts: ru, en or other"),
    "languages": ("set", "languages of the person's texts"),
    "sentiment.negative_share": ("number", "share of the person's texts that are negative, 0-1"),
    "sentiment.positive_share": ("number", "share of the person's texts that are positive, 0-1"),
    "sentiment.neutral_share": ("number", "share of the person's texts that are neutral, 0-1"),
    "sentiment.recent_negative_share": ("number", "negative share of the texts of the last 30 "
                                                  "days, 0-1"),
    "sentiment.last": ("string", "sentiment of the newest text: negative, neutral or positive"),
    "emotion.dominant": ("string", "the person's main emotion: joy, sadness, surprise, fear, "
                                   "anger or neutral"),
    "emotions": ("set", "emotions in at least 20 % of the person's texts"),
    "keywords": ("set", "keywords of the person's texts"),
}
"""Every field a rule may name, with its type and what it holds (docs/insights.md lists them)."""

OPS_BY_TYPE: dict[str, set[str]] = {
    "number": {"=", "!=", ">", ">=", "<", "<=", "in"},
    "string": {"=", "!=", "in"},
    "set": {"has"},
    "bool": {"=", "!="},
}
MAX_DEPTH = 20
MAX_TEXT = 4_000


class RuleError(InvalidInput):
    """A rule that cannot be parsed or does not fit the fields, with where and what was
    expected."""


def _bad(message: str, accepted: str, *, position: int | None = None,
         field: str = "rule") -> RuleError:
    where = f" at position {position}" if position is not None else ""
    return RuleError(f"{message}{where}", field=field, accepted=accepted,
                     details={"position": position} if position is not None else None)


# ----------------------------------------------------------------------------- text form

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
    r"|(?P<op>!=|>=|<=|=|>|<)|(?P<punct>[()\[\],])|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)


@dataclass
class _Token:
    kind: str
    text: str
    pos: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            start = pos + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise _bad(f"unexpected character {text[start]!r}", "a field, a value, an operator "
                       "(= != > >= < <= in has), and, or, not, segment(...), brackets",
                       position=start)
        kind = match.lastgroup or ""
        start = match.start(kind)
        out.append(_Token(kind, match.group(kind), start))
        pos = match.end()
    out.append(_Token("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str, what: str) -> None:
        if self.tok.text != text or self.tok.kind in ("str", "end"):
            raise self.error(what)

    def error(self, expected: str) -> RuleError:
        found = "the end of the rule" if self.tok.kind == "end" else repr(self.tok.text)
        return _bad(f"expected {expected}, found {found}", expected, position=self.tok.pos)

    def word(self, text: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.lower() == text

    def parse(self) -> dict[str, Any]:
        rule = self.expr(0)
        if self.tok.kind != "end":
            raise self.error("'and', 'or' or the end of the rule")
        return rule

    def expr(self, depth: int) -> dict[str, Any]:
        parts = [self.conj(depth)]
        while self.word("or"):
            self.take()
            parts.append(self.conj(depth))
        return parts[0] if len(parts) == 1 else {"or": parts}

    def conj(self, depth: int) -> dict[str, Any]:
        parts = [self.unary(depth)]
        while self.word("and"):
            self.take()
            parts.append(self.unary(depth))
        return parts[0] if len(parts) == 1 else {"and": parts}

    def unary(self, depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise _bad("the rule is nested too deeply", f"at most {MAX_DEPTH} levels",
                       position=self.tok.pos)
        if self.word("not"):
            self.take()
            return {"not": self.unary(depth + 1)}
        if self.tok.text == "(" and self.tok.kind == "punct":
            self.take()
            inner = self.expr(depth + 1)
            self.expect(")", "')'")
            self.take()
            return inner
        if self.word("segment"):
            self.take()
            self.expect("(", "'(' after segment")
            self.take()
            if self.tok.kind != "str":
                raise self.error('a segment id in quotes, e.g. segment("vip")')
            name = _unquote(self.take().text)
            self.expect(")", "')'")
            self.take()
            return {"segment": name}
        if self.tok.kind != "word":
            raise self.error("a field name, 'not', '(' or segment(...)")
        field = self.take()
        if self.word("in"):
            self.take()
            self.expect("[", "'[' after in")
            self.take()
            values = [self.value()]
            while self.tok.text == "," and self.tok.kind == "punct":
                self.take()
                values.append(self.value())
            self.expect("]", "',' or ']'")
            self.take()
            return {"field": field.text, "op": "in", "value": values, "pos": field.pos}
        if self.word("has"):
            self.take()
            return {"field": field.text, "op": "has", "value": self.value(), "pos": field.pos}
        if self.tok.kind != "op":
            raise self.error("an operator: = != > >= < <= in has")
        op = self.take().text
        return {"field": field.text, "op": op, "value": self.value(), "pos": field.pos}

    def value(self) -> Any:
        tok = self.tok
        if tok.kind == "num":
            self.take()
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.kind == "str":
            self.take()
            return _unquote(tok.text)
        if tok.kind == "word" and tok.text.lower() in ("true", "false"):
            self.take()
            return tok.text.lower() == "true"
        raise self.error('a value: a number, "text" or true / false')


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def parse_text(text: str) -> dict[str, Any]:
    """The JSON form of a text rule (RuleError with the position and what was expected)."""
    if len(text) > MAX_TEXT:
        raise _bad("the rule is too long", f"at most {MAX_TEXT} characters")
    if not text.strip():
        raise _bad("the rule is empty", "a condition such as churn_risk > 0.7")
    return validate(_Parser(text).parse())


# ----------------------------------------------------------------------------- validation

def validate(rule: Any, path: str = "rule") -> dict[str, Any]:
    """Check a JSON rule's shape, fields, operators and value types; returns it normalised
    (without text positions)."""
    if not isinstance(rule, Mapping):
        raise _bad(f"{path} is not an object", 'an object such as {"field": ..., "op": ..., '
                   '"value": ...}, {"and": [...]}, {"or": [...]}, {"not": ...}, '
                   '{"segment": "id"}', field=path)
    pos = rule.get("pos")
    keys = set(rule) - {"pos"}
    if keys in ({"and"}, {"or"}):
        (key,) = keys
        parts = rule[key]
        if not isinstance(parts, list) or not parts:
            raise _bad(f"{path}.{key} must be a non-empty list", "a list of rules",
                       field=f"{path}.{key}")
        return {key: [validate(p, f"{path}.{key}[{i}]") for i, p in enumerate(parts)]}
    if keys == {"not"}:
        return {"not": validate(rule["not"], f"{path}.not")}
    if keys == {"segment"}:
        if not isinstance(rule["segment"], str) or not rule["segment"]:
            raise _bad(f"{path}.segment must be a segment id", "a segment id",
                       field=f"{path}.segment")
        return {"segment": rule["segment"]}
    if keys != {"field", "op", "value"}:
        raise _bad(f"{path} has keys {sorted(keys)}", "field / op / value, and, or, not, segment",
                   field=path)
    name, op, value = rule["field"], rule["op"], rule["value"]
    where = {"position": pos} if isinstance(pos, int) else {}
    if name not in FIELDS:
        raise _bad(f"unknown field {name!r}", "one of: " + ", ".join(FIELDS),
                   field=f"{path}.field", **where)
    kind, _ = FIELDS[name]
    if op not in OPS_BY_TYPE[kind]:
        raise _bad(f"operator {op!r} does not apply to {name} ({kind})",
                   " ".join(sorted(OPS_BY_TYPE[kind])), field=f"{path}.op", **where)
    values = value if op == "in" else [value]
    if op == "in" and (not isinstance(value, list) or not value):
        raise _bad(f"'in' needs a non-empty list for {name}", "a list of values",
                   field=f"{path}.value", **where)
    for v in values:
        expected = {"number": (int, float), "string": (str,), "set": (str,), "bool": (bool,)}[kind]
        if (isinstance(v, bool) and kind == "number") or not isinstance(v, expected):
            accepted = {"number": "a number", "string": "text", "set": "text",
                        "bool": "true or false"}[kind]
            raise _bad(f"{name} is {kind} but the value {v!r} is not", accepted,
                       field=f"{path}.value", **where)
    return {"field": name, "op": op, "value": value}


def references(rule: Mapping[str, Any]) -> set[str]:
    """The segment ids a rule refers to."""
    if "segment" in rule:
        return {rule["segment"]}
    if "not" in rule:
        return references(rule["not"])
    for key in ("and", "or"):
        if key in rule:
            return set().union(*(references(r) for r in rule[key]))
    return set()


def to_text(rule: Mapping[str, Any]) -> str:
    """The readable form of a JSON rule (parses back to the same rule)."""
    def quote(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(v)

    if "segment" in rule:
        return f"segment({quote(rule['segment'])})"
    if "not" in rule:
        return f"not ({to_text(rule['not'])})"
    for key in ("and", "or"):
        if key in rule:
            return f" {key} ".join(f"({to_text(r)})" if ("and" in r or "or" in r) else to_text(r)
                                   for r in rule[key])
    if rule["op"] == "in":
        return f"{rule['field']} in [{', '.join(quote(v) for v in rule['value'])}]"
    return f"{rule['field']} {rule['op']} {quote(rule['value'])}"


# ----------------------------------------------------------------------------- evaluation

def evaluate(rule: Mapping[str, Any], facts: Mapping[str, Any],
             segment: Callable[[str], bool]) -> bool:
    """Whether ``facts`` (field -> value) satisfy the rule; ``segment(id)`` answers references."""
    if "and" in rule:
        return all(evaluate(r, facts, segment) for r in rule["and"])
    if "or" in rule:
        return any(evaluate(r, facts, segment) for r in rule["or"])
    if "not" in rule:
        return not evaluate(rule["not"], facts, segment)
    if "segment" in rule:
        return segment(rule["segment"])
    have = facts.get(rule["field"])
    if have is None:
        return False
    op, want = rule["op"], rule["value"]
    if op == "has":
        return want in have
    if op == "in":
        return have in want
    if op == "=":
        return bool(have == want)
    if op == "!=":
        return bool(have != want)
    if op == ">":
        return bool(have > want)
    if op == ">=":
        return bool(have >= want)
    if op == "<":
        return bool(have < want)
    return bool(have <= want)
