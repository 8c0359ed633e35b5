"""The sender interface every channel implements, the two ways a send can fail, and the check
that every registered channel declares the consent purpose its marketing messages need."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

from personify.domain.errors import ConfigurationError
from personify.domain.users import User
from personify.messaging.records import OutboxMessage
from personify.messaging.templates import RenderedMessage


class SendError(Exception):
    """A send failed; ``permanent`` failures are not retried."""

    permanent = False


class TransientSendError(SendError):
    """Worth retrying later (timeouts, 4xx SMTP replies, HTTP 5xx / 429)."""


class PermanentSendError(SendError):
    """Retrying will not help (5xx SMTP replies, refused addresses, HTTP 4xx, redirects)."""

    permanent = True


PURPOSE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
"""What a consent purpose name looks like (``email_marketing``)."""


class Sender(Protocol):
    """Delivers one rendered message; raises :class:`SendError` on failure.

    ``message.message_id`` is stable across retries so a receiver can detect a resend.
    ``consent_purpose`` is the consent a marketing message on the channel needs (asked at send
    time); a channel without one cannot be registered (:func:`check_channels`).
    """

    consent_purpose: str | None

    def send(self, message: OutboxMessage, rendered: RenderedMessage, user: User) -> None: ...

    def close(self) -> None: ...


def check_channels(senders: Mapping[str, Sender]) -> None:
    """Consent fails closed: refuse (at start-up) a channel that declares no consent purpose,
    with a :class:`ConfigurationError` naming the channel."""
    for name, sender in senders.items():
        purpose = getattr(sender, "consent_purpose", None)
        if not isinstance(purpose, str) or not re.fullmatch(PURPOSE_PATTERN, purpose):
            raise ConfigurationError(
                f"message channel {name!r} ({type(sender).__name__}) declares no consent "
                f"purpose (got {purpose!r}): its marketing messages could not be checked",
                field=f"channels.{name}.consent_purpose",
                accepted="a consent purpose name such as email_marketing or push_marketing "
                "(the sender's consent_purpose attribute)",
            )
