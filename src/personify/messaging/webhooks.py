"""Push / chat / CRM channels through signed webhooks.

The body is JSON signed with HMAC-SHA256 over ``"{timestamp}.{body}"`` (headers
``X-Personify-Timestamp`` and ``X-Personify-Signature: v1=<hex>``). HTTPS only unless
``allow_http``; the host is resolved once, refused if any address is not public, and the request
goes to that address (no second lookup, so no DNS rebinding); redirects are never followed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import httpx
import orjson

from personify.domain.consents import Purpose
from personify.domain.errors import Forbidden, InvalidInput
from personify.domain.users import User
from personify.messaging.channels import PermanentSendError, TransientSendError
from personify.messaging.network_guard import Resolver, resolve_public, system_resolver
from personify.messaging.records import OutboxMessage
from personify.messaging.templates import RenderedMessage


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``v1=`` signature a receiver recomputes to authenticate a webhook."""
    mac = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(
    secret: bytes, timestamp: int, body: bytes, header: str, *, now: float, tolerance: int = 300
) -> bool:
    """Receiver side: a valid, fresh signature (replays older than ``tolerance`` s fail)."""
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


@dataclass
class WebhookTarget:
    url: str
    secret: bytes
    timeout_s: float = 5.0
    headers: dict[str, str] = field(default_factory=dict)
    consent_purpose: str | None = Purpose.PUSH_MARKETING.value
    """The consent a marketing message to this target needs (the channel's)."""


class WebhookSender:
    """Channel sender posting the rendered message to one target."""

    def __init__(
        self,
        target: WebhookTarget,
        *,
        allow_http: bool = False,
        allow_hosts: Collection[str] = (),
        resolver: Resolver = system_resolver,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.consent_purpose = target.consent_purpose
        url = httpx.URL(target.url)
        if url.scheme not in ("https", "http") or (url.scheme == "http" and not allow_http):
            raise InvalidInput(
                f"webhook URL scheme {url.scheme!r} is not allowed",
                field="url",
                accepted="https:// (http:// only with allow_http for development)",
            )
        if not url.host:
            raise InvalidInput("webhook URL has no host", field="url")
        if len(target.secret) < 16:
            raise InvalidInput(
                "webhook secret is too short", field="secret", accepted=">= 16 bytes"
            )
        self.target = target
        self.url = url
        self.allow_hosts = frozenset(allow_hosts)
        self.resolver = resolver
        self.clock = clock
        self._client = httpx.Client(
            follow_redirects=False,
            timeout=httpx.Timeout(target.timeout_s),
            trust_env=False,
            transport=transport,
        )

    def payload(self, message: OutboxMessage, rendered: RenderedMessage) -> bytes:
        return orjson.dumps(
            {
                "message_id": message.message_id,
                "tenant": message.tenant,
                "user_id": message.user_id,
                "channel": message.channel,
                "template": message.template,
                "subject": rendered.subject,
                "text": rendered.text,
                "html": rendered.html,
                "language": rendered.language,
            }
        )

    def post(self, body: bytes, *, idempotency_key: str) -> httpx.Response:
        """POST ``body`` to the pinned, checked address of the target."""
        port = self.url.port or (443 if self.url.scheme == "https" else 80)
        try:
            address = resolve_public(
                self.url.host, port, resolver=self.resolver, allow=self.allow_hosts
            )
        except Forbidden as exc:
            raise PermanentSendError(exc.message) from exc
        timestamp = int(self.clock())
        host_header = self.url.host if self.url.port is None else f"{self.url.host}:{self.url.port}"
        headers = {
            **self.target.headers,
            "Host": host_header,
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
            "X-Personify-Timestamp": str(timestamp),
            "X-Personify-Signature": signature(self.target.secret, timestamp, body),
        }
        pinned = self.url.copy_with(host=address)
        extensions = {"sni_hostname": self.url.host} if self.url.scheme == "https" else {}
        try:
            request = self._client.build_request(
                "POST", pinned, content=body, headers=headers, extensions=extensions
            )
            response = self._client.send(request)
        except httpx.TimeoutException as exc:
            raise TransientSendError(f"webhook timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise TransientSendError(f"webhook transport error: {exc}") from exc
        if response.is_redirect:
            raise PermanentSendError(f"webhook answered a redirect ({response.status_code})")
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientSendError(f"webhook answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentSendError(f"webhook answered {response.status_code}")
        return response

    def send(self, message: OutboxMessage, rendered: RenderedMessage, user: User) -> None:
        self.post(self.payload(message, rendered), idempotency_key=message.message_id)

    def close(self) -> None:
        self._client.close()
