"""Request filters and business rules applied to candidates: type, category, price,
availability, property conditions, exclusions, never the user themself or what they authored,
boosts and buries."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from personify.domain.errors import Unavailable
from personify.domain.events import Context
from personify.domain.items import Item
from personify.serving.request import (
    Boost,
    ContextCondition,
    Filters,
    PropertyCondition,
    RecommendationRequest,
)


def item_field(item: Item, name: str) -> Any:
    """A top-level item field (price, type, title ...) or else a free property."""
    if name in Item.model_fields and name != "properties":
        return getattr(item, name)
    return item.properties.get(name)


def matches(item: Item, condition: PropertyCondition) -> bool:
    """Whether ``item`` satisfies one condition; a missing value never matches (except ``ne``)."""
    return compare(item_field(item, condition.field), condition.op, condition.value)


def context_field(context: Context, name: str) -> Any:
    """``weather.condition``, ``location.country``, ``device`` ... of a request's context."""
    value: Any = context
    for part in name.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def context_matches(context: Context, conditions: Iterable[ContextCondition]) -> bool:
    """Whether every condition holds for ``context`` (a missing value fails, except ``ne``)."""
    return all(compare(context_field(context, c.field), c.op, c.value) for c in conditions)


def compare(actual: Any, op: str, expected: Any) -> bool:
    """``actual op expected``; a missing value never matches (except ``ne``)."""
    if actual is None:
        return op == "ne"
    try:
        if op == "eq":
            return bool(actual == expected)
        if op == "ne":
            return bool(actual != expected)
        if op == "in":
            return isinstance(expected, list) and actual in expected
        if op == "contains":
            return isinstance(actual, list) and expected in actual
        if op == "lt":
            return bool(actual < expected)
        if op == "lte":
            return bool(actual <= expected)
        if op == "gt":
            return bool(actual > expected)
        if op == "gte":
            return bool(actual >= expected)
    except TypeError:
        return False
    return False


def passes_filters(item: Item, filters: Filters, item_types: Iterable[str], now: datetime) -> bool:
    """Whether one item may be shown under ``filters``."""
    return item_filter(filters, item_types, now)(item)


def narrowing(filters: Filters, item_types: Iterable[str]) -> bool:
    """Whether ``filters`` go beyond visibility, stock and expiry (types, categories, tags,
    price, property conditions), i.e. may drop many candidates."""
    return bool(
        any(True for _ in item_types) or filters.categories or filters.exclude_categories
        or filters.tags or filters.price_min is not None or filters.price_max is not None
        or filters.conditions
    )


def item_filter(
    filters: Filters, item_types: Iterable[str], now: datetime
) -> Callable[[Item], bool]:
    """``passes_filters`` for one request, compiled once: the checks the request does not ask
    for are left out (a request without filters only checks visibility, stock and expiry)."""
    types = frozenset(item_types)
    available_only = filters.available_only

    def visible(item: Item) -> bool:
        if item.hidden or (available_only and not item.available):
            return False
        return item.expires_at is None or item.expires_at > now

    if not narrowing(filters, types):
        return visible
    categories = frozenset(filters.categories)
    excluded = frozenset(filters.exclude_categories)
    tags = frozenset(filters.tags)
    low, high, conditions = filters.price_min, filters.price_max, list(filters.conditions)

    def passes(item: Item) -> bool:
        if not visible(item) or (types and item.type not in types):
            return False
        if categories and categories.isdisjoint(item.categories):
            return False
        if excluded and not excluded.isdisjoint(item.categories):
            return False
        if tags and tags.isdisjoint(item.tags):
            return False
        if low is not None and (item.price is None or item.price < low):
            return False
        if high is not None and (item.price is None or item.price > high):
            return False
        return all(matches(item, c) for c in conditions)

    return passes


def excluded_ids(
    request: RecommendationRequest,
    *,
    seen: dict[str, float],
    bought: Iterable[str],
    disliked: Iterable[str],
    authored: Iterable[str],
    muted: Iterable[str] = (),
    now: datetime | None = None,
) -> set[str]:
    """Ids never to return: recently seen (within the window), bought, disliked, explicitly
    excluded, the user's own person item and anything they authored, muted items.

    ``seen`` maps item id -> last interaction time (Unix seconds).
    """
    now = now or datetime.now(UTC)
    out: set[str] = set(request.exclude.items) | set(authored) | set(muted)
    if request.user_id is not None:
        out.add(request.user_id)
    window = request.exclude.seen_days
    if window is not None:
        cutoff = now.timestamp() - window * 86_400
        out.update(i for i, t in seen.items() if t >= cutoff)
    if request.exclude.bought:
        out.update(bought)
    if request.exclude.disliked:
        out.update(disliked)
    return out


def active_boosts(boosts: Iterable[Boost], context: Context) -> list[Boost]:
    """The boosts whose ``when`` conditions hold for the request's context."""
    return [b for b in boosts if not b.when or context_matches(context, b.when)]


def apply_boosts(item: Item, score: float, boosts: Iterable[Boost]) -> float:
    for boost in boosts:
        if matches(item, boost.condition):
            score = score * boost.factor if score >= 0 else score / boost.factor
    return score


SegmentsOf = Callable[[str, str | None, Sequence[str]], frozenset[str]]
"""``(tenant, user_id, segment ids)``: which of those live segments the person is in now (none
for ``None``, an anonymous visitor); raises NotFound for an unknown id."""


def resolve_segment_rules(tenant: str, request: RecommendationRequest,
                          segments_of: SegmentsOf | None) -> RecommendationRequest:
    """``request`` with its segment rules applied for its person: the filters and boosts of each
    rule whose segments the person is in (or, negated, in none of) join the request's own."""
    if not request.segment_rules:
        return request
    if segments_of is None:
        raise Unavailable("segment rules need live segments, which this process does not serve",
                          field="segment_rules", accepted="a request without segment_rules")
    wanted = list(dict.fromkeys(s for r in request.segment_rules for s in r.segments))
    inside = segments_of(tenant, request.user_id, wanted)
    exclude = list(request.filters.exclude_categories)
    conditions = list(request.filters.conditions)
    boosts = list(request.rules.boosts)
    for rule in request.segment_rules:
        if bool(inside.intersection(rule.segments)) == rule.negate:
            continue
        exclude.extend(c for c in rule.exclude_categories if c not in exclude)
        conditions.extend(rule.conditions)
        boosts.extend(rule.boosts)
    return request.model_copy(update={
        "filters": request.filters.model_copy(
            update={"exclude_categories": exclude, "conditions": conditions}),
        "rules": request.rules.model_copy(update={"boosts": boosts}),
        "segment_rules": [],
    })
