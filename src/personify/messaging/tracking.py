"""Signed tracking and unsubscribe tokens, and the handlers the HTTP edge mounts.

Opens and clicks flow back as ``email_open`` / ``email_click`` events (with the message's
``recommendation_id``) through an event sink. A click redirects only to the URL stored for that
message and link, never to a URL carried by the token: no open redirect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from personify.domain.errors import InvalidInput, NotFound, Unauthorized
from personify.domain.events import Event, EventType
from personify.messaging.ports import OutboxStore, SuppressionStore
from personify.messaging.records import TrackedLink

EventSink = Callable[[str, Event], None]
"""(tenant, event) -> None: hands a tracking event to ingestion."""

_OPEN, _CLICK, _UNSUBSCRIBE = "o", "c", "u"
_RECENT_TOKENS = 4_096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TrackingSigner:
    """Makes and checks HMAC-SHA256 signed tokens and the URLs that carry them."""

    def __init__(self, secret: bytes | str, base_url: str, *, mailto_domain: str | None = None):
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        if len(key) < 16:
            raise InvalidInput(
                "tracking secret is too short", field="secret", accepted="at least 16 bytes"
            )
        self._key = key
        self.base_url = base_url.rstrip("/")
        self.mailto_domain = mailto_domain
        self._recent: dict[tuple[str, ...], str] = {}
        """Recently made open / unsubscribe tokens: a message needs each of them in its
        variables and again in its headers."""

    def _remembered(self, payload: list[str]) -> str:
        key = tuple(payload)
        token = self._recent.get(key)
        if token is None:
            if len(self._recent) >= _RECENT_TOKENS:
                self._recent.clear()
            token = self._recent[key] = self.sign(payload)
        return token

    def sign(self, payload: list[Any]) -> str:
        body = _b64(orjson.dumps(payload))
        mac = hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()[:16]
        return f"{body}.{_b64(mac)}"

    def verify(self, token: str, kind: str) -> list[Any]:
        """The payload of a valid token of ``kind``; :class:`Unauthorized` otherwise."""
        try:
            body, mac = token.split(".", 1)
            expected = hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()[:16]
            if not hmac.compare_digest(expected, _unb64(mac)):
                raise ValueError("bad signature")
            payload = orjson.loads(_unb64(body))
        except (ValueError, orjson.JSONDecodeError, UnicodeError) as exc:
            raise Unauthorized("invalid or tampered tracking token", field="token") from exc
        if not isinstance(payload, list) or not payload or payload[0] != kind:
            raise Unauthorized("tracking token of the wrong kind", field="token")
        return payload

    def open_url(self, tenant: str, message_id: str, user_id: str) -> str:
        return f"{self.base_url}/t/o/{self._remembered([_OPEN, tenant, message_id, user_id])}"

    def click_url(self, tenant: str, message_id: str, user_id: str, link_id: str) -> str:
        return f"{self.base_url}/t/c/{self.sign([_CLICK, tenant, message_id, user_id, link_id])}"

    def unsubscribe_token(self, tenant: str, user_id: str, channel: str) -> str:
        return self._remembered([_UNSUBSCRIBE, tenant, user_id, channel])

    def unsubscribe_url(self, tenant: str, user_id: str, channel: str) -> str:
        return f"{self.base_url}/u/{self.unsubscribe_token(tenant, user_id, channel)}"

    def unsubscribe_mailto(self, tenant: str, user_id: str, channel: str) -> str | None:
        if not self.mailto_domain:
            return None
        token = self.unsubscribe_token(tenant, user_id, channel)
        return f"mailto:unsubscribe@{self.mailto_domain}?subject=unsubscribe%20{token}"


@dataclass(frozen=True)
class Click:
    redirect_url: str
    event: Event


class TrackingHandler:
    """Turns verified tokens into events, redirects and suppressions."""

    def __init__(
        self,
        signer: TrackingSigner,
        outbox: OutboxStore,
        suppressions: SuppressionStore,
        emit: EventSink,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.signer = signer
        self.outbox = outbox
        self.suppressions = suppressions
        self.emit = emit
        self.clock = clock or (lambda: datetime.now(UTC))

    def _recommendation_id(self, message_id: str) -> str | None:
        message = self.outbox.get(message_id)
        return message.context.get("recommendation_id") if message else None

    def open(self, token: str) -> Event:
        """An open pixel was loaded: emit (and return) an ``email_open`` event."""
        _, tenant, message_id, user_id = self.signer.verify(token, _OPEN)
        event = Event(
            event_id=f"email_open:{message_id}",
            type=EventType.EMAIL_OPEN,
            user_id=user_id,
            timestamp=self.clock(),
            recommendation_id=self._recommendation_id(message_id),
            properties={"message_id": message_id},
        )
        self.emit(tenant, event)
        return event

    def click(self, token: str) -> Click:
        """A tracked link was followed: emit ``email_click``; redirect to the stored URL only."""
        _, tenant, message_id, user_id, link_id = self.signer.verify(token, _CLICK)
        link: TrackedLink | None = self.outbox.get_link(message_id, link_id)
        if link is None:
            raise NotFound("unknown tracked link", field="token")
        event = Event(
            event_id=f"email_click:{message_id}:{link_id}",
            type=EventType.EMAIL_CLICK,
            user_id=user_id,
            item_id=link.item_id,
            timestamp=self.clock(),
            recommendation_id=link.recommendation_id or self._recommendation_id(message_id),
            properties={"message_id": message_id, "link_id": link_id},
        )
        self.emit(tenant, event)
        return Click(redirect_url=link.url, event=event)

    def unsubscribe(self, token: str) -> tuple[str, str, str]:
        """One-click unsubscribe (RFC 8058 POST or the link): effective for the next send.

        Returns (tenant, user_id, channel).
        """
        _, tenant, user_id, channel = self.signer.verify(token, _UNSUBSCRIBE)
        self.suppressions.suppress(tenant, user_id, channel, self.clock(), "one-click unsubscribe")
        return tenant, user_id, channel
