"""``personify import items`` with a price-drop journey enabled: the imported price drop is
queued in the messaging file and ``personify messages worker --once`` emails the person who
viewed the item (and nobody else) through a real local SMTP server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import Result

from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.users import User
from personify.messaging.item_updates import PRICE_DROPPED
from personify.messaging.state_stores import messaging_db_path, open_state_file
from personify.storage.registry import open_stores
from personify.storage.sql.messaging_definitions import SqlMessagingDefinitions

pytest.importorskip("aiosmtpd")

from personify.messaging.smtp_sink import SmtpSink

JOURNEY = {
    "name": "drop_now",
    "trigger": {"item_update": "price_drop", "min_drop_percent": 5, "viewed_within": "7d"},
    "steps": [{"type": "send", "id": "tell", "template": "drop"}],
}
TEMPLATE = {"name": "drop", "recommendations": 0,
            "variants": [{"subject": "{{ event.item_title }}: -{{ event.drop_percent }}%",
                          "text": "now {{ event.new_price }}"}]}


def _daytime_zone() -> str:
    """A fixed-offset zone where it is about noon now (quiet hours never get in the way)."""
    offset = 12 - datetime.now(UTC).hour
    return f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def shop(database_url: str, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch,
         tmp_path: Path) -> str:
    for name, value in {
        "ADMIN_KEY": "cli-admin-key-0123456789-abcdef",
        "TRACKING_SECRET": "cli-tracking-secret-0123456789", "SMTP_HOST": sink.host,
        "SMTP_PORT": str(sink.port), "MODEL_DIR": str(tmp_path / "models"),
    }.items():
        monkeypatch.setenv(f"PERSONIFY_{name}", value)
    zone = _daytime_zone()
    with open_stores(database_url) as stores:
        stores.catalog.upsert("default", [Item(item_id=f"i{k}", title=f"Lamp {k}", price=100.0)
                                          for k in range(3)])
        stores.users.upsert("default", [
            User(user_id=u, profile={"name": u.title(), "email": f"{u}@example.com",
                                     "time_zone": zone}) for u in ("ann", "bob")])
        for user in ("ann", "bob"):
            stores.consents.append("default", ConsentRecord(
                user_id=user, purpose="email_marketing", state=ConsentState.GRANTED))
        stores.events.append("default", [
            Event(event_id="v1", type="view", user_id="ann", item_id="i1",
                  timestamp=datetime.now(UTC) - timedelta(hours=2)),
            Event(event_id="v2", type="view", user_id="bob", item_id="i2",
                  timestamp=datetime.now(UTC) - timedelta(hours=2))])
        assert stores.database is not None
        definitions = SqlMessagingDefinitions(stores.database)
        definitions.put("default", "template", "drop", TEMPLATE, enabled=True)
        definitions.put("default", "journey", "drop_now", JOURNEY, enabled=True)
    return database_url


def test_an_imported_price_drop_reaches_the_viewer(
    personify: Callable[..., Result], shop: str, tmp_path: Path, sink: SmtpSink
) -> None:
    feed = tmp_path / "items.csv"
    feed.write_text("item_id,title,price\ni0,Lamp 0,99\ni1,Lamp 1,80\ni2,Lamp 2,120\n",
                    encoding="utf-8")
    imported = personify("import", "items", str(feed), "--no-progress")
    assert imported.exit_code == 0, imported.output

    path = messaging_db_path(shop)
    assert path is not None
    state = open_state_file(path)
    try:
        queued = state.item_changes.claim(datetime.now(UTC), limit=10, lease=timedelta(seconds=0))
    finally:
        state.close()
    assert [(c.item_id, c.kind, c.old_price, c.new_price) for _, c in queued] == [
        ("i0", PRICE_DROPPED, 100.0, 99.0), ("i1", PRICE_DROPPED, 100.0, 80.0)]

    worked = personify("messages", "worker", "--once")
    assert worked.exit_code == 0, worked.output
    [mail] = sink.handler.messages()  # i0 dropped 1 % (under 5 %); bob viewed only i2
    assert mail["To"].addresses[0].addr_spec == "ann@example.com"
    assert mail["Subject"] == "Lamp 1: -20.0%"
