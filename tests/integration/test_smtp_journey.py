"""Done-when test of issue 7: a journey defined in a YAML file runs end to end.

events -> trigger -> wait (fake clock) -> email with personal content arrives at a real local
SMTP server -> the click token produces an email_click event -> a purchase ends the journey.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("aiosmtpd")

from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.users import User
from personify.messaging.guardrails import Guardrails, QuietHours
from personify.messaging.journey_definitions import load_journey
from personify.messaging.journeys import JourneyEngine
from personify.messaging.outbox import OutboxWorker
from personify.messaging.records import RunStatus
from personify.messaging.smtp import SmtpConfig, SmtpSender
from personify.messaging.smtp_sink import SmtpSink
from personify.messaging.state_stores import open_state_file
from personify.messaging.templates import MessageTemplate
from personify.messaging.timing import SendTimeModel
from personify.messaging.tracking import TrackingHandler, TrackingSigner

JOURNEY_YAML = """
name: cart_rescue
trigger:
  event: add_to_cart
  where: [{field: event.price, op: gte, value: 20}]
exit_on: [purchase]
steps:
  - {type: wait, id: grace, duration: 2h}
  - type: condition
    id: not_bought
    events_since_entry: {type: purchase, max: 0}
  - {type: wait, id: best_time, until: best_time, within: 24h}
  - {type: send, id: reminder, template: cart_reminder, discount_percent: 15}
  - {type: wait, id: later, duration: 3d}
  - {type: send, id: last_call, template: cart_reminder}
"""

REMINDER = MessageTemplate(
    name="cart_reminder",
    recommendations=2,
    variants=[
        {"language": "ru", "tone": "informal",
         "subject": "{{ user.name }}, в корзине {{ cart|length }} "
                    "{{ cart|length|plural('товар', 'товара', 'товаров') }}",
         "html": "<html><body>{% for c in cart %}<p>{{ c.title }}</p>{% endfor %}"
                 "<p>Код {{ discount.code }}: -{{ discount.percent|int }}%</p>"
                 "{% for r in recommendations %}<a href=\"{{ r.url }}\">{{ r.title }}</a>"
                 "{% endfor %}</body></html>",
         "text": "{% for c in cart %}{{ c.title }}\n{% endfor %}"},
    ],
)
CATALOG = {
    "kettle": Item(item_id="kettle", title="Чайник", price=35.0),
    "mug": Item(item_id="mug", title="Кружка", price=9.0),
}


def test_yaml_journey_end_to_end(tmp_path: Path) -> None:
    journey_file = tmp_path / "cart_rescue.yaml"
    journey_file.write_text(JOURNEY_YAML, encoding="utf-8")
    journey = load_journey(journey_file)

    clock = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    user = User(user_id="olga", profile={"name": "Ольга", "email": "olga@example.com",
                                         "language": "ru", "time_zone": "Europe/Moscow"},
                properties={"tone": "informal"})
    users = {"olga": user}
    db = tmp_path / "messaging.sqlite"
    state = open_state_file(db)
    outbox, runs, suppressions = state.outbox, state.runs, state.suppressions
    # Olga is usually active at 19:xx Moscow time (16:xx UTC)
    history = [("olga", datetime(2026, 2, d, 16, 20, tzinfo=UTC)) for d in range(1, 20)]
    timing = SendTimeModel().fit(history, users)
    engine = JourneyEngine([journey], runs, outbox, users=lambda t, u: users.get(u),
                           consent=lambda t, u, p: True, suppressions=suppressions,
                           send_time=timing.next_send_time)
    emitted: list[Event] = []
    signer = TrackingSigner(b"e" * 32, "https://t.example")
    tracking = TrackingHandler(signer, outbox, suppressions, lambda t, e: emitted.append(e),
                               clock=lambda: clock[0])

    def event(kind: str, item: str, price: float | None = None) -> Event:
        return Event(event_id=f"{kind}-{item}-{clock[0].timestamp()}", type=kind,
                     user_id="olga", item_id=item, price=price, timestamp=clock[0])

    with SmtpSink() as sink:
        worker = OutboxWorker(
            store=outbox, templates=lambda t, n: REMINDER if n == "cart_reminder" else None,
            users=lambda t, u: users.get(u),
            senders={"email": SmtpSender(SmtpConfig(port=sink.port), signer)},
            consent=lambda t, u, p: True, suppressions=suppressions,
            recommend=lambda t, u, n: [Item(item_id=f"rec{k}", title=f"Совет {k}",
                                            properties={"url": f"https://shop.example/items/"
                                                               f"rec{k}"})
                                       for k in range(n)],
            items=lambda t, ids: {i: CATALOG[i] for i in ids if i in CATALOG},
            signer=signer, guardrails=Guardrails(quiet_hours=QuietHours(22, 8)),
            clock=lambda: clock[0],
        )
        assert engine.handle_event("shop", event("add_to_cart", "mug", 9.0), clock[0]) == []
        [run] = engine.handle_event("shop", event("add_to_cart", "kettle", 35.0), clock[0])
        clock[0] += timedelta(minutes=10)
        engine.handle_event("shop", event("add_to_cart", "mug", 9.0), clock[0])

        clock[0] += timedelta(hours=2)  # 11:10 UTC: grace over, waits for the best hour
        engine.tick("shop", clock[0])
        worker.run_until_idle()
        assert sink.handler.message_ids == []
        assert runs.latest("shop", "cart_rescue", "olga").wake_at == datetime(
            2026, 3, 2, 16, 0, tzinfo=UTC)

        clock[0] = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
        engine.tick("shop", clock[0])
        worker.run_until_idle()
        [mail] = sink.handler.messages()
        [to] = mail["To"].addresses
        assert (to.display_name, to.addr_spec) == ("Ольга", "olga@example.com")
        assert mail["Subject"] == "Ольга, в корзине 2 товара"
        html = mail.get_body(("html",)).get_content()
        assert "<p>Чайник</p>" in html and "<p>Кружка</p>" in html and "-15%" in html
        assert "Совет 0" in html

        click_url = re.search(r'href="(https://t\.example/t/c/[^"]+)"', html).group(1)
        click = tracking.click(click_url.rsplit("/", 1)[1])
        assert click.redirect_url.endswith("/items/rec0")
        [click_event] = emitted
        assert click_event.type == "email_click" and click_event.item_id == "rec0"
        assert click_event.recommendation_id.startswith("msg-")
        engine.handle_event("shop", click_event, clock[0])

        clock[0] += timedelta(hours=5)
        engine.handle_event("shop", event("purchase", "kettle", 35.0), clock[0])
        done = runs.latest("shop", "cart_rescue", "olga")
        assert done.run_id == run.run_id
        assert done.status == RunStatus.EXITED and done.exit_reason == "goal:purchase"
        assert [e["type"] for e in done.context["events"]] == ["add_to_cart", "email_click"]

        clock[0] += timedelta(days=4)  # the last-call step never happens
        engine.tick("shop", clock[0])
        worker.run_until_idle()
        assert len(sink.handler.message_ids) == 1
        worker.close()
    state.close()
