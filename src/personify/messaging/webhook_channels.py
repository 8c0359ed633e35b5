"""Webhook channels (push / chat / CRM) configured by operators: a name, an HTTPS URL, a
signing secret, a timeout and the consent purpose a marketing message on the channel needs.

Channels come from the settings (every tenant) and from the API (one tenant each).
:func:`parse_channel` validates a document with errors naming the field; the secret is kept
to sign requests and is never part of :meth:`WebhookChannel.public` (what lists and answers
show). :class:`ChannelDirectory` gives the outbox worker a sender and a consent purpose per
(tenant, channel). Private, loopback and link-local addresses are refused here when the URL
names one literally, and for every host after DNS resolution at send time
(:mod:`personify.messaging.network_guard`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from personify.domain.errors import InvalidInput
from personify.messaging.channels import PURPOSE_PATTERN, Sender
from personify.messaging.network_guard import (
    Resolver,
    ip_literal,
    refusal_reason,
    system_resolver,
)
from personify.messaging.webhooks import WebhookSender, WebhookTarget

RESERVED_CHANNELS = frozenset({"email", "inbox"})
"""Channels with their own sender; a webhook channel cannot take these names."""
CHANNEL_NAME = r"^[a-z][a-z0-9_-]{0,31}$"
MIN_SECRET_CHARS = 16


class WebhookChannel(BaseModel):
    """One webhook channel (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=CHANNEL_NAME, description="the channel messages name, e.g. push")
    url: str = Field(min_length=1, max_length=2048)
    secret: SecretStr = Field(description="HMAC-SHA256 signing key; never shown again")
    timeout_s: float = Field(default=5.0, gt=0, le=30)
    consent_purpose: str | None = Field(
        default="push_marketing",
        pattern=PURPOSE_PATTERN,
        description="consent a marketing message on this channel needs (required: null is "
        "refused when the channel is registered; a stored one without it sends nothing)",
    )

    def public(self, source: str) -> dict[str, Any]:
        """What may be shown: everything but the secret."""
        return {
            "name": self.name,
            "url": self.url,
            "timeout_s": self.timeout_s,
            "consent_purpose": self.consent_purpose,
            "secret_set": True,
            "source": source,
        }


def check_webhook_url(url: str, *, allow_http: bool, allow_hosts: Collection[str] = ()) -> None:
    """Refuse URLs a webhook must never use; :class:`InvalidInput` names ``url``."""
    accepted = "https://host/path (http:// only with webhook_allow_http, for development)"
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise InvalidInput(f"webhook URL is not a URL: {exc}", field="url",
                           accepted=accepted) from exc
    if parsed.scheme not in ("https", "http") or (parsed.scheme == "http" and not allow_http):
        raise InvalidInput(f"webhook URL scheme {parsed.scheme!r} is not allowed", field="url",
                           accepted=accepted)
    if not parsed.host:
        raise InvalidInput("webhook URL has no host", field="url", accepted=accepted)
    if parsed.userinfo:
        raise InvalidInput(
            "webhook URL must not carry credentials (they would be shown with the channel)",
            field="url", accepted="the signing secret authenticates the request",
        )
    if parsed.fragment:
        raise InvalidInput("webhook URL must not have a #fragment", field="url",
                           accepted=accepted)
    host = parsed.host
    if host in allow_hosts:
        return
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        raise InvalidInput(f"webhook host {host!r} is this machine", field="url",
                           accepted="a public host (or one listed in webhook_allow_hosts)")
    literal = ip_literal(name)
    if literal is None:
        return  # a name: checked after every DNS resolution when sending
    reason = refusal_reason(literal)
    if reason:
        raise InvalidInput(f"webhook URL points at a {reason}", field="url",
                           accepted="a public address (or one listed in webhook_allow_hosts)")


def parse_channel(
    data: Any,
    *,
    allow_http: bool,
    allow_hosts: Collection[str] = (),
    field_prefix: str = "",
) -> WebhookChannel:
    """Validate one channel document; :class:`InvalidInput` names the field (with
    ``field_prefix``, e.g. ``webhook_channels.0.``)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("a webhook channel must be an object", field=field_prefix.rstrip(".")
                           or "body", accepted="{name, url, secret, timeout_s, consent_purpose}")
    try:
        channel = WebhookChannel.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(
            f"invalid webhook channel at {path}: {first['msg']}",
            field=f"{field_prefix}{path}",
            accepted=_ACCEPTED.get(path, "see docs/messaging.md (webhook channels)"),
        ) from exc
    if channel.name in RESERVED_CHANNELS:
        raise InvalidInput(f"channel name {channel.name!r} is reserved",
                           field=f"{field_prefix}name",
                           accepted=f"a name other than {', '.join(sorted(RESERVED_CHANNELS))}")
    if channel.consent_purpose is None:
        raise InvalidInput(
            f"channel {channel.name!r} declares no consent purpose: its marketing messages "
            "could not be checked", field=f"{field_prefix}consent_purpose",
            accepted=_ACCEPTED["consent_purpose"],
        )
    if len(channel.secret.get_secret_value()) < MIN_SECRET_CHARS:
        raise InvalidInput("webhook secret is too short", field=f"{field_prefix}secret",
                           accepted=f"at least {MIN_SECRET_CHARS} characters")
    try:
        check_webhook_url(channel.url, allow_http=allow_http, allow_hosts=allow_hosts)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=f"{field_prefix}url",
                           accepted=exc.accepted) from exc
    return channel


_ACCEPTED = {
    "name": "lower-case letters, digits, _ and -, starting with a letter (<= 32)",
    "url": "https://host/path",
    "secret": f"a string of at least {MIN_SECRET_CHARS} characters",
    "timeout_s": "seconds, > 0 and <= 30",
    "consent_purpose": "a consent purpose name such as push_marketing (default)",
}


ChannelsOf = Callable[[str], Sequence[WebhookChannel]]
"""tenant -> the webhook channels the tenant created (through the API)."""


class ChannelDirectory:
    """Webhook channels by (tenant, name): settings channels serve every tenant, a tenant's own
    channels (``tenant_channels``) add to them. Senders are built once per configuration and
    rebuilt when a channel changes."""

    def __init__(
        self,
        configured: Sequence[WebhookChannel] = (),
        tenant_channels: ChannelsOf | None = None,
        *,
        allow_http: bool = False,
        allow_hosts: Collection[str] = (),
        resolver: Resolver = system_resolver,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.configured = {c.name: c for c in configured}
        self.tenant_channels = tenant_channels
        self.allow_http = allow_http
        self.allow_hosts = tuple(allow_hosts)
        self.resolver = resolver
        self.transport = transport
        self._senders: dict[tuple[str, str], tuple[WebhookChannel, WebhookSender]] = {}
        self._lock = threading.Lock()

    def channel(self, tenant: str, name: str) -> WebhookChannel | None:
        if name in self.configured:
            return self.configured[name]
        if self.tenant_channels is None:
            return None
        return next((c for c in self.tenant_channels(tenant) if c.name == name), None)

    def sender(self, tenant: str, name: str) -> Sender | None:
        """The sender of the channel, or None when the tenant has no such channel."""
        channel = self.channel(tenant, name)
        if channel is None:
            return None
        key = ("*" if name in self.configured else tenant, name)
        stale: WebhookSender | None = None
        with self._lock:
            built = self._senders.get(key)
            if built is not None and built[0] == channel:
                return built[1]
            if built is not None:
                stale = built[1]
            sender = WebhookSender(
                WebhookTarget(
                    url=channel.url,
                    secret=channel.secret.get_secret_value().encode("utf-8"),
                    timeout_s=channel.timeout_s,
                    consent_purpose=channel.consent_purpose,
                ),
                allow_http=self.allow_http,
                allow_hosts=self.allow_hosts,
                resolver=self.resolver,
                transport=self.transport,
            )
            self._senders[key] = (channel, sender)
        if stale is not None:  # the channel changed: a new client, the old one closed
            stale.close()
        return sender

    def purpose(self, tenant: str, name: str) -> tuple[bool, str | None]:
        """(is a webhook channel, the consent purpose its marketing messages need)."""
        channel = self.channel(tenant, name)
        return (False, None) if channel is None else (True, channel.consent_purpose)

    def close(self) -> None:
        with self._lock:
            built, self._senders = list(self._senders.values()), {}
        for _, sender in built:
            sender.close()
