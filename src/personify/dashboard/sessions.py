"""Server-side operator sessions: a random session id in a signed cookie, the key behind it and a
CSRF token bound to it, kept in this process's memory.

The cookie holds ``<session id>.<HMAC-SHA256 of the id>``; a forged or altered cookie is refused
before any lookup. Sessions end on logout, after ``idle`` without a request, after ``lifetime``,
or when the API key they were opened with is revoked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from personify.domain.keys import ApiKey

COOKIE_NAME = "personify_dashboard"
COOKIE_PATH = "/dashboard"
DEFAULT_IDLE_SECONDS = 2 * 3600.0
DEFAULT_LIFETIME_SECONDS = 12 * 3600.0
MAX_SESSIONS = 10_000


@dataclass
class Session:
    """One logged-in operator: the key they logged in with, its tenant and the CSRF token."""

    session_id: str
    key: ApiKey
    csrf_token: str
    created_at: float
    last_seen: float
    key_checked_at: float = 0.0
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def tenant(self) -> str:
        return self.key.tenant


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SessionStore:
    """Sessions of one process. ``secret`` signs cookie values (random per process by default,
    so a restart logs everyone out: the sessions themselves live only in memory)."""

    def __init__(
        self,
        *,
        secret: bytes | None = None,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        lifetime_seconds: float = DEFAULT_LIFETIME_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.idle_seconds = idle_seconds
        self.lifetime_seconds = lifetime_seconds
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def sign(self, value: str) -> str:
        """``value.<signature>``: what goes into a cookie."""
        mac = hmac.new(self._secret, value.encode("ascii"), hashlib.sha256).digest()
        return f"{value}.{_b64(mac)}"

    def unsign(self, signed: str | None) -> str | None:
        """The value of a signed cookie, or None when it is missing, malformed or forged."""
        if not signed or signed.count(".") != 1:
            return None
        value, _ = signed.split(".")
        try:
            expected = self.sign(value)
        except UnicodeEncodeError:
            return None
        return value if hmac.compare_digest(expected, signed) else None

    def open(self, key: ApiKey) -> tuple[Session, str]:
        """Start a session for ``key``; returns it and the signed cookie value."""
        now = self.clock()
        session = Session(
            session_id=secrets.token_urlsafe(32),
            key=key,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen=now,
            key_checked_at=now,
        )
        with self._lock:
            self._expire(now)
            if len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
                self._sessions.pop(oldest.session_id, None)
            self._sessions[session.session_id] = session
        return session, self.sign(session.session_id)

    def get(self, cookie: str | None) -> Session | None:
        """The live session of a signed cookie value (its idle clock restarts), else None."""
        session_id = self.unsign(cookie)
        if session_id is None:
            return None
        now = self.clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[session_id]
                return None
            session.last_seen = now
            return session

    def close(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def close_for_key(self, key_id: str) -> int:
        """End every session opened with ``key_id`` (the key was revoked); returns how many."""
        with self._lock:
            doomed = [s for s, v in self._sessions.items() if v.key.key_id == key_id]
            for session_id in doomed:
                del self._sessions[session_id]
        return len(doomed)

    def __len__(self) -> int:
        return len(self._sessions)

    def _expired(self, session: Session, now: float) -> bool:
        return (
            now - session.last_seen > self.idle_seconds
            or now - session.created_at > self.lifetime_seconds
        )

    def _expire(self, now: float) -> None:
        for session_id in [s for s, v in self._sessions.items() if self._expired(v, now)]:
            del self._sessions[session_id]


class LoginThrottle:
    """At most ``limit`` failed logins per client address per ``window`` seconds."""

    def __init__(
        self, *, limit: int = 10, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str) -> bool:
        now = self.clock()
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if now - t < self.window]
            self._failures[client] = recent
            return len(recent) >= self.limit

    def failed(self, client: str) -> None:
        with self._lock:
            self._failures.setdefault(client, []).append(self.clock())
            if len(self._failures) > MAX_SESSIONS:
                self._failures.clear()

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
