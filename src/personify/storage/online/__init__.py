"""Online state: what serving reads per request and ingestion updates per event.

``open_online_state(url, prefix)`` picks the adapter by URL scheme: ``None`` or ``memory://``
for the in-process state, ``redis://`` / ``rediss://`` / ``unix://`` for the shared Redis one.
"""

from __future__ import annotations

from personify.domain.errors import ConfigurationError, Unavailable
from personify.storage.online.fallback import FallbackOnlineState
from personify.storage.online.memory import MemoryOnlineState
from personify.storage.online.port import (
    GLOBAL_SEGMENT,
    Interaction,
    OnlineState,
    OnlineStateConfig,
    UserState,
)

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

__all__ = [
    "GLOBAL_SEGMENT",
    "FallbackOnlineState",
    "Interaction",
    "MemoryOnlineState",
    "OnlineState",
    "OnlineStateConfig",
    "UserState",
    "open_online_state",
]


def open_online_state(
    url: str | None, prefix: str = "personify", *, config: OnlineStateConfig | None = None,
    key_secret: bytes | None = None,
) -> OnlineState:
    """The online state for ``url``; Redis is pinged and raises ``Unavailable`` when down.
    ``key_secret`` keys the hash that names a person's Redis keys (see
    :mod:`personify.storage.online.redis`; unset = a secret generated once in Redis)."""
    if url is None or url == "memory://":
        return MemoryOnlineState(config)
    if url.startswith(REDIS_SCHEMES):
        if not prefix or any(c.isspace() for c in prefix):
            raise ConfigurationError(
                f"invalid Redis key prefix {prefix!r}",
                field="redis_prefix",
                accepted="a non-empty prefix without blanks, e.g. 'personify'",
            )
        try:
            from personify.storage.online.redis import RedisOnlineState
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise Unavailable(
                "the Redis online state needs the redis client library",
                field="redis_url",
                accepted="pip install 'personify[redis]'",
            ) from exc
        return RedisOnlineState.from_url(url, prefix, config, key_secret=key_secret)
    raise ConfigurationError(
        f"unsupported online state URL {url!r}",
        field="redis_url",
        accepted="unset or memory:// (in-process), redis://host:port/db, rediss://, unix://",
    )
