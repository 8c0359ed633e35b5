"""Ranking features: one code path computes them at request time and at training time, so a
feature means the same thing online and offline (the scores of the registered sources, time in
the user's zone, season, holidays, device, channel, item age and price, popularity)."""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import NDArray

from personify.domain.events import Context
from personify.domain.items import Item
from personify.serving.source_registry import source_registry

CONTEXT_FEATURES: tuple[str, ...] = (
    "hour",
    "weekday",
    "season",
    "holiday",
    "device",
    "channel",
    "temperature_c",
    "precipitation_mm",
    "weather",
)
ITEM_FEATURES: tuple[str, ...] = ("item_age_days", "log_price", "popularity")


def source_features() -> tuple[str, ...]:
    """The sources whose scores are features, as the source registry declares them."""
    return source_registry().features()


def feature_names() -> tuple[str, ...]:
    """Today's feature columns: ``score_<source>`` per registered feature source, then the
    context and item features (a ranker keeps the names it was trained on)."""
    return tuple(f"score_{s}" for s in source_features()) + CONTEXT_FEATURES + ITEM_FEATURES

CATEGORICAL: tuple[str, ...] = ("weekday", "season", "device", "channel", "weather")


def local_time(when: datetime, context: Context, time_zone: str | None) -> datetime:
    """The request's local time: the client's ``local_time``, else ``when`` in the user's zone."""
    if context.local_time is not None:
        return context.local_time
    if time_zone:
        try:
            return when.astimezone(ZoneInfo(time_zone))
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    return when


def season(month: int, southern: bool = False) -> int:
    """0 winter, 1 spring, 2 summer, 3 autumn (flipped south of the equator)."""
    value = (month % 12) // 3
    return (value + 2) % 4 if southern else value


@lru_cache(maxsize=64)
def _holidays(country: str) -> object | None:
    try:
        import holidays
    except ImportError:  # pragma: no cover - holidays is a core dependency
        return None
    try:
        return holidays.country_holidays(country.upper())
    except (NotImplementedError, KeyError):
        return None


def is_holiday(day: datetime, country: str | None) -> bool:
    if not country:
        return False
    calendar = _holidays(country)
    return calendar is not None and day.date() in calendar  # type: ignore[operator]


def _code(value: str | None) -> int:
    """A stable small integer for a categorical string (0 = missing)."""
    if not value:
        return 0
    return 1 + zlib.crc32(value.lower().encode()) % 1000


def context_vector(
    when: datetime, context: Context, time_zone: str | None, country: str | None
) -> list[float]:
    local = local_time(when, context, time_zone)
    lat = context.location.latitude if context.location is not None else None
    return [
        float(local.hour),
        float(local.weekday()),
        float(season(local.month, southern=lat is not None and lat < 0)),
        float(is_holiday(local, country)),
        float(_code(context.device)),
        float(_code(context.channel)),
        *_weather(context),
    ]


def _weather(context: Context) -> list[float]:
    """Temperature, precipitation (NaN when unknown) and the condition's code (0 = unknown)."""
    weather = context.weather
    if weather is None:
        return [math.nan, math.nan, 0.0]
    return [
        math.nan if weather.temperature_c is None else float(weather.temperature_c),
        math.nan if weather.precipitation_mm is None else float(weather.precipitation_mm),
        float(_code(weather.condition)),
    ]


def item_vector(item: Item | None, when: datetime, popularity: float) -> list[float]:
    if item is None:
        return [math.nan, math.nan, popularity]
    age = (when - item.created_at).total_seconds() / 86_400 if item.created_at else math.nan
    price = math.log1p(item.price) if item.price is not None else math.nan
    return [age, price, popularity]


def feature_matrix(
    candidates: Sequence[tuple[str, Mapping[str, float]]],
    *,
    when: datetime,
    context: Context,
    time_zone: str | None,
    country: str | None,
    items: Mapping[str, Item | None],
    popularity: Mapping[str, float],
) -> NDArray[np.float32]:
    """Rows = candidates, columns = :func:`feature_names`."""
    ctx = context_vector(when, context, time_zone, country)
    sources = source_features()
    rows = []
    for item_id, scores in candidates:
        rows.append(
            [float(scores.get(s, 0.0)) for s in sources]
            + ctx
            + item_vector(items.get(item_id), when, popularity.get(item_id, 0.0))
        )
    width = len(sources) + len(CONTEXT_FEATURES) + len(ITEM_FEATURES)
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), width)
