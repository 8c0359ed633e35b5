"""Degrade to an in-process online state while the shared one (Redis) is unavailable."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from personify.domain.errors import Unavailable
from personify.domain.events import Event
from personify.storage.online.port import OnlineState, OnlineStateConfig, UserState

logger = logging.getLogger(__name__)


class FallbackOnlineState:
    """Use ``primary``; when it raises :class:`Unavailable`, warn once and serve from
    ``fallback`` until ``retry_after`` has passed, then try ``primary`` again.

    Writes made during an outage land in the fallback only: the shared state misses them
    (recommendations stay sensible, a little less fresh) and the fallback is not replayed.
    """

    def __init__(
        self,
        primary: OnlineState,
        fallback: OnlineState,
        *,
        retry_after: timedelta = timedelta(seconds=30),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.config: OnlineStateConfig = primary.config
        self._retry_after = retry_after.total_seconds()
        self._clock = clock
        self._down_since: float | None = None
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """Whether calls currently go to the fallback."""
        return self._down_since is not None

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            down = self._down_since
            skip = down is not None and self._clock() - down < self._retry_after
        if skip:
            return getattr(self.fallback, method)(*args, **kwargs)
        try:
            result = getattr(self.primary, method)(*args, **kwargs)
        except Unavailable as exc:
            with self._lock:
                if self._down_since is None:
                    logger.warning(
                        "online state unavailable, serving from the in-process fallback "
                        "(retrying every %.0f s): %s",
                        self._retry_after,
                        exc.message,
                    )
                self._down_since = self._clock()
            return getattr(self.fallback, method)(*args, **kwargs)
        if down is not None:
            with self._lock:
                if self._down_since is not None:
                    logger.warning("online state available again; fallback no longer used")
                self._down_since = None
        return result

    def apply(
        self,
        tenant: str,
        events: Sequence[Event],
        *,
        segments: Mapping[str, Sequence[str]] | None = None,
        now: datetime | None = None,
    ) -> None:
        self._call("apply", tenant, events, segments=segments, now=now)

    def user_state(self, tenant: str, user: str, *, now: datetime | None = None) -> UserState:
        result: UserState = self._call("user_state", tenant, user, now=now)
        return result

    def trending(
        self, tenant: str, n: int, *, segment: str | None = None, now: datetime | None = None
    ) -> list[tuple[str, float]]:
        result: list[tuple[str, float]] = self._call(
            "trending", tenant, n, segment=segment, now=now
        )
        return result

    def item_popularity(
        self,
        tenant: str,
        item_ids: Sequence[str],
        *,
        segment: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, float]:
        result: dict[str, float] = self._call(
            "item_popularity", tenant, item_ids, segment=segment, now=now
        )
        return result

    def neighbours(self, tenant: str, item_id: str, n: int) -> list[tuple[str, float]]:
        result: list[tuple[str, float]] = self._call("neighbours", tenant, item_id, n)
        return result

    def set_user_vector(
        self,
        tenant: str,
        model_version: str,
        user: str,
        vector: np.ndarray,
        *,
        now: datetime | None = None,
    ) -> None:
        self._call("set_user_vector", tenant, model_version, user, vector, now=now)

    def get_user_vector(
        self, tenant: str, model_version: str, user: str, *, now: datetime | None = None
    ) -> np.ndarray | None:
        result: np.ndarray | None = self._call(
            "get_user_vector", tenant, model_version, user, now=now
        )
        return result

    def forget_user(self, tenant: str, user: str) -> None:
        """Erase from both: an erasure must not survive in the fallback."""
        self.fallback.forget_user(tenant, user)
        self._call("forget_user", tenant, user)

    def merge_users(
        self, tenant: str, anonymous_key: str, user_id: str, *, now: datetime | None = None
    ) -> None:
        self._call("merge_users", tenant, anonymous_key, user_id, now=now)

    def close(self) -> None:
        self.primary.close()
        self.fallback.close()
