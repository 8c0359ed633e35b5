"""Redis online state, shared by every server process. Keys live under ``{prefix}:{tenant}:``:

========================  ===========  ======================================================
``log:{person}``          list         JSON entries ``[ts, type, item, [segments]]``, newest
                                       arrival first, capped at ``recent_cap``
``seen|bought|disliked:`` sorted set   item -> last time, capped at ``exclusion_cap``
``vec:{person}``          hash         model version -> float32 bytes
``active``                sorted set   person -> last activity (logical TTL, pruned by score)
``pop:{segment}``         sorted set   item -> log-space decayed score (see :mod:`.decay`)
``co:{item}``             sorted set   neighbour -> co-occurrence count, top ``neighbours_cap``
``shown:{person}``        list         JSON answers ``[ts, [items]]`` the chain showed, newest
                                       first, capped (anti-repetition shared by every worker)
========================  ===========  ======================================================

``{person}`` is never a plain user or anonymous id: it is a keyed hash of the tenant and the id
(HMAC-SHA256, :class:`SubjectKeys`), so key names and set members carry no identifier a Redis dump,
``MONITOR`` or a slow log could reveal, and nothing names a person once their keys are deleted.
The key is ``redis_key_secret`` from the settings, else a random secret generated once and kept
under ``{prefix}:_subject_secret``. Keys written by releases before 2026-12 used plain ids; they
are no longer read and expire by their TTL (``user_ttl``; the person cache's generations after a
day), and an erasure deletes a person's old plain-id keys too.

Per-user keys carry a TTL of ``user_ttl`` refreshed on every write, so memory follows active
users. An :meth:`apply` costs two round trips per batch (read the users' last log entries for
co-occurrence, then one pipeline of writes including one Lua call for the log-space adds).
Every Redis failure surfaces as :class:`personify.domain.errors.Unavailable`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
import orjson
import redis
from redis.backoff import ConstantBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from personify.domain.errors import Unavailable
from personify.domain.events import Event
from personify.domain.tenants import validate_tenant_id
from personify.storage.online import changes as ch
from personify.storage.online.decay import GONE, decay_rate, score_floor, value_at
from personify.storage.online.port import (
    GLOBAL_SEGMENT,
    OnlineStateConfig,
    UserState,
    check_vector,
)

# Batch writes are Lua scripts fed one JSON payload (decoded by the built-in cjson): encoding
# one string is far cheaper for the client than thousands of pipelined commands. Numbers are
# re-formatted with 17 digits so scores survive the round trip exactly.

# {"sets": [[key, [member, log amount, ...]], ...], "sign": "+"|"-", "floor": score|null,
#  "cap": n, "gone": eps, "ttl": ms}: ln(e^a + e^b) adds, ln(e^a - e^b) subtractions.
_LOG_ADJUST = """
local p = cjson.decode(ARGV[1])
for _, set in ipairs(p.sets) do
  local key, rows = set[1], set[2]
  for i = 1, #rows, 2 do
    local member, b = rows[i], rows[i + 1]
    local cur = redis.call('ZSCORE', key, member)
    if p.sign == '+' then
      local new = b
      if cur then
        local a = tonumber(cur)
        if a < b then a, b = b, a end
        new = a + math.log(1 + math.exp(b - a))
      end
      redis.call('ZADD', key, string.format('%.17g', new), member)
    elseif cur then
      local a = tonumber(cur)
      local r = math.exp(b - a)
      if r >= 1 - p.gone then
        redis.call('ZREM', key, member)
      else
        redis.call('ZADD', key, string.format('%.17g', a + math.log(1 - r)), member)
      end
    end
  end
  if p.floor ~= cjson.null then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. string.format('%.17g', p.floor))
  end
  local n = redis.call('ZCARD', key)
  if p.cap > 0 and n > p.cap then
    redis.call('ZREMRANGEBYRANK', key, 0, n - p.cap - 1)
  end
  if n > 0 then redis.call('PEXPIRE', key, p.ttl) end
end
return 1
"""

# {"sets": [[key, [member, count, ...]], ...], "cap": n, "ttl": ms}; negative counts subtract
# and drop members that reach zero.
_COUNT_ADJUST = """
local p = cjson.decode(ARGV[1])
for _, set in ipairs(p.sets) do
  local key, rows = set[1], set[2]
  for i = 1, #rows, 2 do
    local member, c = rows[i], rows[i + 1]
    if c > 0 then
      redis.call('ZINCRBY', key, c, member)
    else
      local cur = redis.call('ZSCORE', key, member)
      if cur then
        local left = tonumber(cur) + c
        if left <= 0 then redis.call('ZREM', key, member)
        else redis.call('ZADD', key, left, member) end
      end
    end
  end
  if p.cap > 0 then redis.call('ZREMRANGEBYRANK', key, 0, -p.cap - 1) end
  redis.call('PEXPIRE', key, p.ttl)
end
return 1
"""

# {"users": [[log key, [entry, ...], [[mark key, [item, ts, ...]], ...], [keys to expire]]],
#  "recent_cap": n, "mark_cap": n, "ttl": ms, "active": key, "seen": [user, ts, ...],
#  "cutoff": ts}
_USERS_WRITE = """
local p = cjson.decode(ARGV[1])
for _, u in ipairs(p.users) do
  local log = u[1]
  for _, entry in ipairs(u[2]) do redis.call('LPUSH', log, entry) end
  redis.call('LTRIM', log, 0, p.recent_cap - 1)
  for _, m in ipairs(u[3]) do
    local key, rows = m[1], m[2]
    for i = 1, #rows, 2 do
      redis.call('ZADD', key, 'GT', string.format('%.17g', rows[i + 1]), rows[i])
    end
    redis.call('ZREMRANGEBYRANK', key, 0, -p.mark_cap - 1)
  end
  for _, key in ipairs(u[4]) do redis.call('PEXPIRE', key, p.ttl) end
end
for i = 1, #p.seen, 2 do
  redis.call('ZADD', p.active, 'GT', string.format('%.17g', p.seen[i + 1]), p.seen[i])
end
redis.call('ZREMRANGEBYSCORE', p.active, '-inf', '(' .. string.format('%.17g', p.cutoff))
return 1
"""

_MARKS = ("seen", "bought", "disliked")


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn any Redis client error into :class:`Unavailable`."""
    try:
        yield
    except RedisError as exc:
        raise Unavailable(
            f"Redis online state unavailable during {action}: {exc.__class__.__name__}: {exc}",
            field="redis_url",
            accepted="a reachable Redis server",
        ) from exc


def connect(url: str) -> redis.Redis:
    """A client for ``url`` that fails fast (1 s connect timeout, one retry after 20 ms), so
    that a caller can fall back instead of stalling requests; no connection is made yet."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=1.0, socket_timeout=2.0, retry=Retry(ConstantBackoff(0.02), 1)
    )


def _encode(entry: ch.Entry) -> str:
    return orjson.dumps([entry.ts, entry.type, entry.item, entry.segments]).decode()


def _decode(raw: bytes) -> ch.Entry:
    ts, kind, item, segs = orjson.loads(raw)
    return ch.Entry(float(ts), kind, item, tuple(segs))


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


TRENDING_REFRESH_S = 1.0
"""How stale the shared trending ranking may be in one process (it moves with everyone's
events; what the person themself did is read fresh on every request)."""


SECRET_KEY = "_subject_secret"
"""``{prefix}:_subject_secret``: the generated key of :class:`SubjectKeys` without a configured
secret."""


class SubjectKeys:
    """``(tenant, person) -> key name part``: HMAC-SHA256 of ``tenant NUL person`` (32 hex
    characters), memoized in a bounded LRU (the ingestion hot path hashes each person once).

    ``secret`` is the deployment's ``redis_key_secret``; without it a random secret is generated
    once and kept in Redis (``SET NX``), so every process on the same Redis and prefix agrees.
    """

    def __init__(self, client: redis.Redis, prefix: str, secret: bytes | None = None,
                 max_entries: int = 200_000) -> None:
        self._client, self._prefix = client, prefix
        self._secret = secret
        self.max_entries = max_entries
        self._memo: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def _key(self) -> bytes:
        if self._secret is None:
            name = f"{self._prefix}:{SECRET_KEY}"
            with _translated("subject secret"):
                self._client.set(name, os.urandom(32).hex(), nx=True)
                raw = self._client.get(name)
            if raw is None:  # pragma: no cover - deleted between the two calls
                raise Unavailable("Redis lost the subject secret", field="redis_url")
            self._secret = raw if isinstance(raw, bytes) else str(raw).encode()
        return self._secret

    def __call__(self, tenant: str, person: str) -> str:
        memo = (tenant, person)
        found = self._memo.get(memo)
        if found is not None:
            return found
        digest = hmac.new(self._key(), f"{tenant}\x00{person}".encode(),
                          hashlib.sha256).hexdigest()[:32]
        with self._lock:
            self._memo[memo] = digest
            if len(self._memo) > self.max_entries:
                self._memo.popitem(last=False)
        return digest


class RedisOnlineState:
    """The shared :class:`~personify.storage.online.port.OnlineState` on Redis."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "personify",
        config: OnlineStateConfig | None = None,
        *,
        key_secret: bytes | None = None,
    ) -> None:
        self.config = config or OnlineStateConfig()
        self.prefix = prefix
        self._client = client
        self.subject = SubjectKeys(client, prefix, key_secret)
        """Person -> the hashed name part of their keys (shared with the person cache)."""
        self._lam = decay_rate(self.config.half_life)
        self._ttl_ms = int(self.config.user_ttl.total_seconds() * 1000)
        self._trending: dict[tuple[str, str, int], tuple[float, list[tuple[bytes, float]]]] = {}
        """(tenant, segment, n) -> (read at, rows): the shared ranking read at most every
        ``TRENDING_REFRESH_S`` per process (a person's own events are read per request)."""

    @property
    def client(self) -> redis.Redis:
        """The Redis connection (shared with the person cache's generations)."""
        return self._client

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str = "personify",
        config: OnlineStateConfig | None = None,
        *,
        check: bool = True,
        key_secret: bytes | None = None,
    ) -> RedisOnlineState:
        """Connect and (when ``check``) ping, or raise :class:`Unavailable`.

        Failures surface fast (1 s connect timeout, one retry after 20 ms) so that serving
        can fall back instead of stalling requests.
        """
        with _translated("connect"):
            client = connect(url)
            if check:
                client.ping()
        return cls(client, prefix, config, key_secret=key_secret)

    def _key(self, tenant: str, *parts: str) -> str:
        return ":".join((self.prefix, tenant, *parts))

    def _member(self, tenant: str, user: str) -> str:
        """The person's name in keys and in the ``active`` set (never the plain id)."""
        return self.subject(tenant, user)

    def _user_keys(self, tenant: str, user: str, *, plain: bool = False) -> dict[str, str]:
        """The person's keys (``plain``: the names releases before 2026-12 used)."""
        member = user if plain else self._member(tenant, user)
        names = ("log", *_MARKS, "vec", "shown")
        return {name: self._key(tenant, name, member) for name in names}

    # -- what the chain showed (anti-repetition) ----------------------------------------------

    def record_shown(self, tenant: str, user: str, item_ids: Sequence[str], when: datetime, *,
                     keep: int, ttl: timedelta) -> None:
        """Append one answer shown to ``user`` (at most ``keep`` answers, kept ``ttl``)."""
        key = self._user_keys(tenant, user)["shown"]
        entry = orjson.dumps([when.timestamp(), list(item_ids)])
        with _translated("record_shown"):
            pipe = self._client.pipeline(transaction=False)
            pipe.lpush(key, entry)
            pipe.ltrim(key, 0, keep - 1)
            pipe.pexpire(key, max(1, int(ttl.total_seconds() * 1000)))
            pipe.execute()

    def shown_answers(self, tenant: str, user: str) -> list[tuple[float, list[str]]]:
        """The answers shown to ``user``, newest first: ``(epoch seconds, item ids)``."""
        key = self._user_keys(tenant, user)["shown"]
        with _translated("shown_answers"):
            raw = cast(list[bytes], self._client.lrange(key, 0, -1))
        out: list[tuple[float, list[str]]] = []
        for entry in raw:
            ts, items = orjson.loads(entry)
            out.append((float(ts), [str(i) for i in items]))
        return out

    def forget_shown(self, tenant: str, user: str) -> bool:
        with _translated("forget_shown"):
            return bool(self._client.delete(self._user_keys(tenant, user)["shown"]))

    # -- writes -------------------------------------------------------------------------------

    def apply(
        self,
        tenant: str,
        events: Sequence[Event],
        *,
        segments: Mapping[str, Sequence[str]] | None = None,
        now: datetime | None = None,
    ) -> None:
        """Fold a batch of events in: one read round trip, one write round trip."""
        validate_tenant_id(tenant)
        new = ch.entries_by_user(events, self.config, segments)
        if not new:
            return
        at = ch.to_epoch(now)
        users = list(new)
        active = self._key(tenant, "active")
        with _translated("apply"):
            pipe = self._client.pipeline(transaction=False)
            for user in users:
                pipe.zscore(active, self._member(tenant, user))
                pipe.lrange(self._user_keys(tenant, user)["log"], 0,
                            self.config.session_window - 1)
            found = pipe.execute()
        histories: dict[str, list[ch.Entry]] = {}
        stale: list[str] = []
        for i, user in enumerate(users):
            last, raw = found[2 * i], found[2 * i + 1]
            if raw and ch.expired(last, at, self.config):
                stale.append(user)
            elif raw:
                histories[user] = [_decode(r) for r in reversed(raw)]
        batch = ch.batch_changes(new, histories, self.config.for_tenant(tenant))
        with _translated("apply"):
            pipe = self._client.pipeline(transaction=False)
            for user in stale:
                pipe.delete(*self._user_keys(tenant, user).values())
            self._write_users(pipe, tenant, batch.users, at)
            self._write_popularity(pipe, tenant, batch.popularity, "+", at)
            self._write_pairs(pipe, tenant, batch.pairs)
            pipe.execute()

    def _write_users(
        self, pipe: Any, tenant: str, users: Mapping[str, ch.UserChanges], at: float
    ) -> None:
        rows: list[Any] = []
        seen: list[Any] = []
        for user, mine in users.items():
            keys = self._user_keys(tenant, user)
            marks = [
                [keys[name], [x for kv in changed.items() for x in kv]]
                for name, changed in zip(_MARKS, (mine.seen, mine.bought, mine.disliked),
                                         strict=True)
                if changed
            ]
            rows.append([keys["log"], [_encode(e) for e in mine.entries], marks,
                         list(keys.values())])
            seen.extend((self._member(tenant, user), mine.last_ts))
        payload = {
            "users": rows,
            "recent_cap": self.config.recent_cap,
            "mark_cap": self.config.exclusion_cap,
            "ttl": self._ttl_ms,
            "active": self._key(tenant, "active"),
            "seen": seen,
            "cutoff": at - self.config.user_ttl.total_seconds(),
        }
        pipe.eval(_USERS_WRITE, 0, orjson.dumps(payload))

    def _write_popularity(
        self, pipe: Any, tenant: str, amounts: Mapping[ch.PopKey, float], sign: str, at: float
    ) -> None:
        self._trending.clear()  # this process reads its own writes at once
        if not amounts:
            return
        sets: dict[str, list[Any]] = {}
        for (segment, item), score in amounts.items():
            sets.setdefault(self._key(tenant, "pop", segment), []).extend((item, score))
        adding = sign == "+"
        payload = {
            "sets": list(sets.items()),
            "sign": sign,
            "floor": score_floor(self.config.min_popularity, at, self._lam) if adding else None,
            "cap": self.config.max_items_per_segment if adding else 0,
            "gone": GONE,
            "ttl": self._ttl_ms,
        }
        pipe.eval(_LOG_ADJUST, 0, orjson.dumps(payload))

    def _write_pairs(self, pipe: Any, tenant: str, pairs: Mapping[ch.Pair, int]) -> None:
        """Add (positive) or subtract (negative) co-occurrence counts in one script call."""
        if not pairs:
            return
        sets: dict[str, list[Any]] = {}
        for (item, other), count in pairs.items():
            sets.setdefault(self._key(tenant, "co", item), []).extend((other, count))
        payload = {"sets": list(sets.items()), "cap": self.config.neighbours_cap,
                   "ttl": self._ttl_ms}
        pipe.eval(_COUNT_ADJUST, 0, orjson.dumps(payload))

    # -- reads --------------------------------------------------------------------------------

    def user_state(self, tenant: str, user: str, *, now: datetime | None = None) -> UserState:
        """The user's recent items, session and exclusion marks: one round trip."""
        validate_tenant_id(tenant)
        keys = self._user_keys(tenant, user)
        with _translated("user_state"):
            pipe = self._client.pipeline(transaction=False)
            pipe.zscore(self._key(tenant, "active"), self._member(tenant, user))
            pipe.lrange(keys["log"], 0, -1)
            for name in _MARKS:
                pipe.zrange(keys[name], 0, -1, withscores=True)
            last, raw, seen, bought, disliked = pipe.execute()
        log = [_decode(r) for r in reversed(raw)]
        return ch.user_state_from(
            user,
            log,
            {_text(i): s for i, s in seen},
            {_text(i): s for i, s in bought},
            {_text(i): s for i, s in disliked},
            last,
            ch.to_epoch(now),
            self.config,
        )

    def trending(
        self, tenant: str, n: int, *, segment: str | None = None, now: datetime | None = None
    ) -> list[tuple[str, float]]:
        """Top ``n`` by decayed popularity: one ZREVRANGE, no rescaling."""
        validate_tenant_id(tenant)
        if n <= 0:
            return []
        at = ch.to_epoch(now)
        floor = score_floor(self.config.min_popularity, at, self._lam)
        key = self._key(tenant, "pop", segment or GLOBAL_SEGMENT)
        memo = (tenant, segment or GLOBAL_SEGMENT, n)
        tick = time.monotonic()
        cached = self._trending.get(memo)
        if cached is not None and tick - cached[0] < TRENDING_REFRESH_S:
            rows = cached[1]
        else:
            with _translated("trending"):
                rows = cast(list[tuple[bytes, float]], self._client.zrevrange(key, 0, n - 1, True))
            if len(self._trending) >= 1024:
                self._trending.clear()
            self._trending[memo] = (tick, rows)
        return [(_text(i), value_at(s, at, self._lam)) for i, s in rows if s >= floor]

    def item_popularity(
        self,
        tenant: str,
        item_ids: Sequence[str],
        *,
        segment: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, float]:
        """Decayed popularity per item (0.0 when absent or below ``min_popularity``)."""
        validate_tenant_id(tenant)
        if not item_ids:
            return {}
        at = ch.to_epoch(now)
        floor = score_floor(self.config.min_popularity, at, self._lam)
        key = self._key(tenant, "pop", segment or GLOBAL_SEGMENT)
        with _translated("item_popularity"):
            scores = self._client.zmscore(key, list(item_ids))
        return {
            item: value_at(s, at, self._lam) if s is not None and s >= floor else 0.0
            for item, s in zip(item_ids, scores, strict=True)
        }

    def neighbours(self, tenant: str, item_id: str, n: int) -> list[tuple[str, float]]:
        """Items most often in the same session as ``item_id``."""
        validate_tenant_id(tenant)
        if n <= 0:
            return []
        with _translated("neighbours"):
            key = self._key(tenant, "co", item_id)
            rows = cast(list[tuple[bytes, float]], self._client.zrevrange(key, 0, n - 1, True))
        return [(_text(i), float(s)) for i, s in rows]

    # -- vectors ------------------------------------------------------------------------------

    def set_user_vector(
        self,
        tenant: str,
        model_version: str,
        user: str,
        vector: np.ndarray,
        *,
        now: datetime | None = None,
    ) -> None:
        """Store the vector as float32 bytes in the user's ``vec`` hash."""
        validate_tenant_id(tenant)
        data = check_vector(vector).tobytes()
        key = self._user_keys(tenant, user)["vec"]
        with _translated("set_user_vector"):
            pipe = self._client.pipeline(transaction=False)
            pipe.hset(key, model_version, data)
            pipe.pexpire(key, self._ttl_ms)
            pipe.zadd(self._key(tenant, "active"), {self._member(tenant, user): ch.to_epoch(now)},
                      gt=True)
            pipe.execute()

    def get_user_vector(
        self, tenant: str, model_version: str, user: str, *, now: datetime | None = None
    ) -> np.ndarray | None:
        """The stored float32 vector, or ``None`` (also when the user expired)."""
        validate_tenant_id(tenant)
        with _translated("get_user_vector"):
            pipe = self._client.pipeline(transaction=False)
            pipe.zscore(self._key(tenant, "active"), self._member(tenant, user))
            pipe.hget(self._user_keys(tenant, user)["vec"], model_version)
            last, data = pipe.execute()
        if data is None or ch.expired(last, ch.to_epoch(now), self.config):
            return None
        return np.frombuffer(data, dtype=np.float32).copy()

    # -- erasure and identity -----------------------------------------------------------------

    def forget_user(self, tenant: str, user: str) -> None:
        """Delete the user's keys and subtract their logged contributions, atomically (then
        the same for keys an older release wrote under the plain id, if any are left)."""
        validate_tenant_id(tenant)
        with _translated("forget_user"):
            for plain in (False, True):
                keys = self._user_keys(tenant, user, plain=plain)
                raw = cast(list[bytes], self._client.lrange(keys["log"], 0, -1))
                log = [_decode(r) for r in reversed(raw)]
                pipe = self._client.pipeline(transaction=True)
                cfg = self.config.for_tenant(tenant)
                self._write_popularity(pipe, tenant, ch.popularity_of(log, cfg), "-", 0.0)
                removed = ch.session_pairs((), log, cfg)
                self._write_pairs(pipe, tenant, {p: -n for p, n in removed.items()})
                pipe.delete(*keys.values())
                pipe.zrem(self._key(tenant, "active"),
                          user if plain else self._member(tenant, user))
                pipe.execute()

    def merge_users(
        self, tenant: str, anonymous_key: str, user_id: str, *, now: datetime | None = None
    ) -> None:
        """Move the anonymous subject's state onto ``user_id`` (logs merged by time)."""
        validate_tenant_id(tenant)
        key = anonymous_key if anonymous_key.startswith("anon:") else f"anon:{anonymous_key}"
        if key == user_id:
            return
        at = ch.to_epoch(now)
        cfg = self.config.for_tenant(tenant)
        with _translated("merge_users"):
            self._merge_shown(tenant, key, user_id)
            anon = self._read_whole(tenant, key)
            if anon["last"] is None or ch.expired(anon["last"], at, cfg):
                self._client.delete(*self._state_keys(tenant, key).values())
                return
            user = self._read_whole(tenant, user_id)
            if ch.expired(user["last"], at, cfg):
                user = {"last": None, "log": [], "vec": {}, **{m: {} for m in _MARKS}}
            merged = ch.merged_log(anon["log"], user["log"], cfg.recent_cap)
            delta = ch.merge_pairs_delta(anon["log"], user["log"], merged, cfg)
            target = self._state_keys(tenant, user_id)
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(*target.values(), *self._state_keys(tenant, key).values())
            if merged:
                pipe.lpush(target["log"], *(_encode(e) for e in merged))
            for name in _MARKS:
                marks = ch.merge_marks(user[name], anon[name], cfg.exclusion_cap)
                if marks:
                    pipe.zadd(target[name], marks)
            vectors = {**anon["vec"], **user["vec"]}
            if vectors:
                pipe.hset(target["vec"], mapping=vectors)
            active = self._key(tenant, "active")
            pipe.zrem(active, self._member(tenant, key))
            last = max(anon["last"], user["last"] if user["last"] is not None else anon["last"])
            pipe.zadd(active, {self._member(tenant, user_id): last}, gt=True)
            for name in target.values():
                pipe.pexpire(name, self._ttl_ms)
            self._write_pairs(pipe, tenant, delta)
            pipe.execute()

    def _state_keys(self, tenant: str, user: str) -> dict[str, str]:
        """The person's keys but the shown answers (moved on their own: they outlive the
        interaction state, a visitor shown answers without ever acting has only them)."""
        keys = self._user_keys(tenant, user)
        keys.pop("shown")
        return keys

    def _merge_shown(self, tenant: str, anonymous_key: str, user_id: str) -> None:
        """Move the answers shown to the visitor onto the person (both lists merged newest
        first, nothing dropped: the next ``record_shown`` trims to its ``keep``), keeping the
        longer of the two remaining lifetimes."""
        source = self._user_keys(tenant, anonymous_key)["shown"]
        target = self._user_keys(tenant, user_id)["shown"]
        read = self._client.pipeline(transaction=False)
        read.lrange(source, 0, -1)
        read.pttl(source)
        read.lrange(target, 0, -1)
        read.pttl(target)
        anon_raw, anon_ttl, user_raw, user_ttl = read.execute()
        if not anon_raw:
            return
        entries = [*anon_raw, *user_raw]
        entries.sort(key=lambda raw: float(orjson.loads(raw)[0]), reverse=True)
        ttl = max(int(anon_ttl or 0), int(user_ttl or 0))
        write = self._client.pipeline(transaction=True)
        write.delete(source, target)
        write.rpush(target, *entries)
        if ttl > 0:
            write.pexpire(target, ttl)
        write.execute()

    def _read_whole(self, tenant: str, user: str) -> dict[str, Any]:
        keys = self._user_keys(tenant, user)
        pipe = self._client.pipeline(transaction=False)
        pipe.zscore(self._key(tenant, "active"), self._member(tenant, user))
        pipe.lrange(keys["log"], 0, -1)
        for name in _MARKS:
            pipe.zrange(keys[name], 0, -1, withscores=True)
        pipe.hgetall(keys["vec"])
        last, raw, seen, bought, disliked, vec = pipe.execute()
        return {
            "last": last,
            "log": [_decode(r) for r in reversed(raw)],
            "seen": {_text(i): s for i, s in seen},
            "bought": {_text(i): s for i, s in bought},
            "disliked": {_text(i): s for i, s in disliked},
            "vec": {_text(k): v for k, v in vec.items()},
        }

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def active_users(self, tenant: str, *, now: datetime | None = None) -> int:
        """How many users of the tenant have unexpired state (for sizing and benchmarks)."""
        validate_tenant_id(tenant)
        cutoff = ch.to_epoch(now) - self.config.user_ttl.total_seconds()
        with _translated("active_users"):
            return int(self._client.zcount(self._key(tenant, "active"), cutoff, "+inf"))
