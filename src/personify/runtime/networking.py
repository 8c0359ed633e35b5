"""Networking at run time: the introduction notifier that asks a recipient through the messaging
outbox (messaging and networking are sibling packages; this layer joins them)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from personify.domain.users import User
from personify.messaging.introductions import suggest_introduction
from personify.messaging.outbox import enqueue, new_message
from personify.networking.introductions import Introduction
from personify.networking.service import Notify

INTRODUCTION_TEMPLATE = "introduction"
"""The messaging template that asks a recipient about an introduction (the operator writes it;
its ``event`` holds ``introduction_id``, ``from_user_id``, ``from_name``, ``text`` — the
personalized sentence in the recipient's language and tone — and ``expires_at``)."""


def introduction_notifier(messaging: Callable[[], Any],
                          template: str = INTRODUCTION_TEMPLATE) -> Notify:
    """Ask the recipient through the messaging outbox (``messaging()`` returns the messaging
    runtime or None): a non-transactional email, so consent, suppressions, quiet hours and caps
    apply; at the recipient's best send time; once per introduction (the outbox deduplicates)."""

    def notify(tenant: str, intro: Introduction, asker: User | None, recipient: User | None,
               shared: list[str]) -> str:
        runtime = messaging()
        if runtime is None:
            return "not sent: messaging is not configured"
        if recipient is None:
            return "not sent: the recipient has no profile to write to"
        if runtime.definitions.template(tenant, template) is None:
            return f"not sent: no messaging template {template!r}"
        sender = asker or User(user_id=intro.from_user_id)
        text = suggest_introduction(sender, recipient, {"interests": shared})
        now = runtime.clock()
        when = runtime.send_time_for(tenant)(recipient, now, timedelta(hours=24))
        message = new_message(
            tenant, intro.to_user_id, template, dedup_key=f"introduction:{intro.introduction_id}",
            channel="email", now=now, not_before=when,
            context={"event": {
                "introduction_id": intro.introduction_id, "from_user_id": intro.from_user_id,
                "from_name": sender.profile.name or sender.user_id, "text": text,
                "expires_at": intro.expires_at.isoformat(),
            }},
        )
        _, created = enqueue(runtime.state.outbox, message)
        return "queued" if created else "already queued"

    return notify
