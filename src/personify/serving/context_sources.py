"""Context in the untrained chain: ``time_of_day``, the items popular at the request's hour.

Trained from the log's timestamps (hour of the day in UTC, decayed like the bundle's popularity
and smoothed over the neighbouring hours) into the bundle's parts; the blend learns its weight
on the held-out split, scoring each held-out event at its own hour (the hour a request carries).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from personify.data.vocabulary import Vocabulary
from personify.serving.explanations import Reason
from personify.serving.source_registry import BlendContext, OfflineScorer, TrainingLog, UserScores
from personify.serving.sources import RequestScope, Scored

HALF_LIFE_DAYS = 30.0
SMOOTHING = (1.0, 0.5, 0.25)
"""Weight of the same hour, one hour away, two hours away (circular)."""
MIN_SPAN_DAYS = 2.0


@dataclass
class HourlyPopularity:
    """24 x items: decayed, hour-smoothed popularity per hour of the day (UTC), each row
    relative to its best; ``top`` holds each hour's best items."""

    items: Vocabulary
    by_hour: NDArray[np.float32]
    top: NDArray[np.int64]

    def at(self, hour: int, n: int) -> list[tuple[str, float]]:
        row = self.by_hour[hour % 24]
        return [(self.items.ids[int(i)], float(row[i])) for i in self.top[hour % 24][:n]
                if row[i] > 0]


def train_time_of_day(log: TrainingLog) -> HourlyPopularity | None:
    data = log.data
    times = data.timestamps
    if times is None or times.size == 0:
        return None
    if float(times.max() - times.min()) < MIN_SPAN_DAYS * 86_400:
        return None
    weights = np.clip(data.weights, 0, None).astype(np.float64)
    weights *= np.exp2(-(float(times.max()) - times) / 86_400.0 / HALF_LIFE_DAYS)
    hours = ((times // 3600) % 24).astype(np.int64)
    raw = np.zeros((24, data.n_items), dtype=np.float64)
    np.add.at(raw, (hours, data.item_idx), weights)
    return hourly_popularity(data.items, raw)


def hourly_popularity(items: Vocabulary, raw: NDArray[np.float64]) -> HourlyPopularity:
    """The part from the decayed weight per hour of the day (UTC) and item (24 x items), as
    :func:`train_time_of_day` sums it (the Spark trainer sums it in Spark SQL)."""
    smooth = np.zeros_like(raw)
    for distance, w in enumerate(SMOOTHING):
        smooth += w * np.roll(raw, distance, axis=0)
        if distance:
            smooth += w * np.roll(raw, -distance, axis=0)
    best = smooth.max(axis=1, keepdims=True)
    by_hour = (smooth / np.where(best > 0, best, 1.0)).astype(np.float32)
    k = min(200, len(items))
    top = np.argsort(-by_hour, axis=1, kind="stable")[:, :k].astype(np.int64)
    return HourlyPopularity(items, by_hour, top)


class TimeOfDaySource:
    """The items popular at this hour of the day (a fallback: not personal)."""

    name = "time_of_day"
    personal = False

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        part = scope.bundle.part(self.name) if scope.bundle is not None else None
        if part is None:
            return []
        hour = int(scope.now.timestamp() // 3600) % 24  # UTC, as trained
        return [Scored(i, s, Reason("popular_now", self.name, s)) for i, s in part.at(hour, n)]


def offline_time_of_day(ctx: BlendContext) -> OfflineScorer | None:
    part = ctx.bundle.part("time_of_day")
    if part is None or not ctx.held_at:
        return None
    rows = [part.by_hour[h] for h in range(24)]
    held_at = ctx.held_at

    def score(user: int, history: NDArray[np.int32], weights: NDArray[np.float64]) -> UserScores:
        when = held_at.get(user)
        return rows[int(when // 3600) % 24] if when is not None else {}

    return score
