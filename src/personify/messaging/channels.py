"""The sender interface every channel implements, and the two ways a send can fail."""

from __future__ import annotations

from typing import Protocol

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


class Sender(Protocol):
    """Delivers one rendered message; raises :class:`SendError` on failure.

    ``message.message_id`` is stable across retries so a receiver can detect a resend.
    """

    def send(self, message: OutboxMessage, rendered: RenderedMessage, user: User) -> None: ...

    def close(self) -> None: ...
