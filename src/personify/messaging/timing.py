"""Send-time optimization: each person's best local hour from their own activity.

A person's 24-bin histogram of local activity hours is shrunk towards their group's (for
example their country's) distribution, or the global one when the group is small, and summed
over the neighbouring hours (+-1 h); the best hour is its arg-max. People with no history get
their group's best hour, then the global best hour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from personify.domain.errors import NotFitted
from personify.domain.users import User

_KERNEL = np.full(3, 1 / 3)
"""A box over hour-1..hour+1: the arg-max is the hour whose +-1 h window holds most activity."""


def _circular_smooth(hist: np.ndarray) -> np.ndarray:
    """Box-smoothed scores; ties between neighbours go to the hour with the most own activity."""
    padded = np.concatenate([hist[-1:], hist, hist[:1]])
    return np.convolve(padded, _KERNEL, mode="valid") + 1e-6 * hist


def _default_group(user: User) -> str | None:
    return user.profile.country


@dataclass
class SendTimeModel:
    """Best send hour per person. ``prior_strength``: pseudo-events borrowed from the group."""

    prior_strength: float = 3.0
    min_group_events: int = 50
    default_zone: str = "UTC"
    group_of: Callable[[User], str | None] = _default_group
    user_hist_: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    group_hist_: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    global_hist_: np.ndarray | None = field(default=None, init=False, repr=False)
    _zones: dict[str, ZoneInfo] = field(default_factory=dict, init=False, repr=False)

    def _zone(self, user: User | None) -> ZoneInfo:
        name = (user.profile.time_zone if user else None) or self.default_zone
        zone = self._zones.get(name)
        if zone is None:
            zone = self._zones[name] = ZoneInfo(name)
        return zone

    def fit(
        self, activity: Iterable[tuple[str, datetime]], users: Mapping[str, User]
    ) -> SendTimeModel:
        """Learn from (user_id, aware timestamp) pairs; ``users`` gives zones and groups."""
        user_hist: dict[str, np.ndarray] = {}
        for user_id, at in activity:
            user = users.get(user_id)
            hour = at.astimezone(self._zone(user)).hour
            hist = user_hist.get(user_id)
            if hist is None:
                hist = user_hist[user_id] = np.zeros(24)
            hist[hour] += 1.0
        group_hist: dict[str, np.ndarray] = {}
        global_hist = np.zeros(24)
        for user_id, hist in user_hist.items():
            global_hist += hist
            user = users.get(user_id)
            group = self.group_of(user) if user else None
            if group:
                group_hist.setdefault(group, np.zeros(24))
                group_hist[group] += hist
        self.user_hist_ = user_hist
        self.group_hist_ = {g: h for g, h in group_hist.items() if h.sum() >= self.min_group_events}
        self.global_hist_ = global_hist
        return self

    def _prior(self, user: User) -> np.ndarray:
        if self.global_hist_ is None:
            raise NotFitted("SendTimeModel.fit must run before best_hour", field="model")
        group = self.group_of(user)
        hist = self.group_hist_.get(group) if group else None
        base = hist if hist is not None else self.global_hist_
        total = base.sum()
        return base / total if total > 0 else np.full(24, 1 / 24)

    def global_best_hour(self) -> int:
        if self.global_hist_ is None:
            raise NotFitted("SendTimeModel.fit must run before global_best_hour", field="model")
        return int(np.argmax(_circular_smooth(self.global_hist_)))

    def best_hour(self, user: User) -> int:
        """The person's best local hour (0..23)."""
        prior = self._prior(user) * self.prior_strength
        own = self.user_hist_.get(user.user_id)
        scores = prior if own is None else own + prior
        return int(np.argmax(_circular_smooth(scores)))

    def next_send_time(
        self, user: User, now: datetime, within: timedelta = timedelta(hours=24)
    ) -> datetime:
        """The next start of the person's best hour after ``now`` (``now`` if inside it),
        never later than ``now + within``."""
        zone = self._zone(user)
        local = now.astimezone(zone)
        hour = self.best_hour(user)
        if local.hour == hour:
            return now
        candidate = local.replace(hour=hour, minute=0, second=0, microsecond=0)
        if candidate <= local:
            candidate = candidate + timedelta(days=1)
        result = candidate.astimezone(now.tzinfo)
        return min(result, now + within)
