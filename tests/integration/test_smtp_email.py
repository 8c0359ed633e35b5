"""Email end to end against a real local SMTP server (aiosmtpd on 127.0.0.1, ephemeral port)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

pytest.importorskip("aiosmtpd")

from personify.domain.items import Item
from personify.domain.users import User
from personify.messaging.guardrails import Guardrails
from personify.messaging.outbox import OutboxWorker, new_message
from personify.messaging.records import DeliveryStatus
from personify.messaging.smtp import SmtpConfig, SmtpSender
from personify.messaging.smtp_sink import SmtpSink
from personify.messaging.state_stores import memory_state
from personify.messaging.templates import (
    MessageTemplate,
    RenderedMessage,
    TemplateRenderer,
    item_url_for,
)
from personify.messaging.tracking import TrackingHandler, TrackingSigner

TEMPLATE = MessageTemplate(
    name="digest",
    recommendations=2,
    variants=[{
        "subject": "Picks for {{ user.name }}",
        "preheader": "Two new things <for> you",
        "html": "<html><body><h1>Hi {{ user.name }}</h1>{% for r in recommendations %}"
                "<a href=\"{{ r.url }}\">{{ r.title }}</a>{% endfor %}"
                "<a href=\"{{ unsubscribe_url }}\">unsubscribe</a></body></html>",
        "text": "Hi {{ user.name }}{% for r in recommendations %}\n- {{ r.title }}: {{ r.url }}"
                "{% endfor %}",
    }],
)
ANN = User(user_id="ann", profile={"name": "Ann", "email": "ann@example.com"})


@pytest.fixture
def sink():
    with SmtpSink() as running:
        yield running


def test_multipart_email_with_one_click_unsubscribe(sink) -> None:
    state = memory_state()
    outbox, suppressions = state.outbox, state.suppressions
    signer = TrackingSigner(b"t" * 32, "https://t.example", mailto_domain="example.com")
    worker = OutboxWorker(
        store=outbox,
        templates=lambda t, name: TEMPLATE,
        users=lambda t, uid: ANN,
        senders={"email": SmtpSender(SmtpConfig(port=sink.port, sender="shop@example.com"),
                                     signer)},
        consent=lambda t, uid, purpose: True,
        suppressions=suppressions,
        recommend=lambda t, uid, n: [Item(item_id=f"i{k}", title=f"Lamp {k}") for k in range(n)],
        signer=signer,
        guardrails=Guardrails(quiet_hours=None),
        batch_size=1,
        renderer=TemplateRenderer(item_url=item_url_for("https://shop.example/p/{item_id}")),
    )
    now = datetime.now(UTC)
    first = new_message("shop", "ann", "digest", dedup_key="d1", now=now)
    second = new_message("shop", "ann", "digest", dedup_key="d2", now=now)
    outbox.enqueue(first)
    outbox.enqueue(second)
    worker.run_once()

    [mail] = sink.handler.messages()
    assert mail["Message-ID"] == f"<{first.message_id}@personify.local>"
    assert mail["Subject"] == "Picks for Ann"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Lamp 0" in text and "Lamp 1" in html
    assert "Two new things &lt;for&gt; you" in html  # escaped preheader
    assert "https://t.example/t/o/" in html  # open pixel
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = mail["List-Unsubscribe"]
    assert unsubscribe.startswith("<mailto:unsubscribe@example.com?subject=unsubscribe%20")
    https = re.search(r"<(https://t\.example/u/[^>]+)>", unsubscribe).group(1)

    # The recipient's client POSTs to the https URL (RFC 8058); the lead mounts the handler.
    events: list = []
    handler = TrackingHandler(signer, outbox, suppressions, lambda t, e: events.append(e))
    handler.unsubscribe(https.rsplit("/", 1)[1])
    worker.run_once()
    assert outbox.get(second.message_id).status == DeliveryStatus.SUPPRESSED
    assert len(sink.handler.messages()) == 1  # effective for the very next send

    click = re.search(r'href="(https://t\.example/t/c/[^"]+)"', html).group(1)
    redirect = handler.click(click.rsplit("/", 1)[1])
    assert redirect.redirect_url == "https://shop.example/p/i0"  # item_url_template
    assert events[0].type == "email_click" and events[0].recommendation_id == (
        f"msg-{first.message_id}"
    )
    worker.close()


def test_each_message_gets_a_unique_message_id(sink) -> None:
    sender = SmtpSender(SmtpConfig(port=sink.port))
    rendered_ids = set()
    for i in range(5):
        message = new_message("shop", "ann", "digest", dedup_key=f"k{i}")
        sender.send(message, RenderedMessage(f"s{i}", "", "<p>x</p>", "x", "en", "formal"), ANN)
        rendered_ids.add(message.message_id)
    sender.close()
    received = sink.handler.message_ids
    assert len(received) == 5 and len(set(received)) == 5
    assert {r.strip("<>").split("@")[0] for r in received} == rendered_ids
