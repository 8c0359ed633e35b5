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
from personify.networking.service import Notify, visible

INTRODUCTION_TEMPLATE = "introduction"
"""The messaging template that asks a recipient about an introduction: the tenant's own, else
the built-in one (``personify/messaging/templates_builtin/introduction.yaml``: en / ru, formal /
informal). Its ``event`` holds ``introduction_id``, ``from_user_id``, ``from_name``,
``from_profile_url``, ``shared`` (topics both show), ``they_offer`` (what the recipient looks
for and the asker offers), ``source``, ``variant``, ``expires_at`` and ``text`` (a ready
sentence in the recipient's language and tone)."""


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
        they_offer = sorted(visible(recipient).seeks & visible(asker).offers)[:3]
        url = sender.properties.get("profile_url")
        now = runtime.clock()
        when = runtime.send_time_for(tenant)(recipient, now, timedelta(hours=24))
        message = new_message(
            tenant, intro.to_user_id, template, dedup_key=f"introduction:{intro.introduction_id}",
            channel="email", now=now, not_before=when,
            context={"event": {
                "introduction_id": intro.introduction_id, "from_user_id": intro.from_user_id,
                "from_name": sender.profile.name or sender.user_id, "text": text,
                "from_profile_url": url if isinstance(url, str) else "",
                "shared": list(shared), "they_offer": they_offer, "source": intro.source,
                "variant": intro.variant, "expires_at": intro.expires_at.isoformat(),
            }},
        )
        _, created = enqueue(runtime.state.outbox, message)
        return "queued" if created else "already queued"

    return notify
