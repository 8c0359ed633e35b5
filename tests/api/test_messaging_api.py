"""``/v1/messaging`` and the public tracking endpoints, over ``memory://`` and a real local SMTP
server: template CRUD, preview with the person's recommendations, scopes, tenant isolation,
opens / clicks becoming events, and an unsubscribe that stops the very next send."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from _messaging_app import clocked_messaging, smtp_sink  # noqa: F401 - fixtures
from fastapi.testclient import TestClient

from personify.runtime.messaging import MessagingRuntime
from personify.settings import Settings
from personify.storage.registry import Stores

pytest.importorskip("aiosmtpd")

from personify.messaging.smtp_sink import SmtpSink

if TYPE_CHECKING:
    from conftest import TenantKeys

SECRET = "tracking-secret-for-the-api-tests-0123"
BASE = "https://api.example"
TEMPLATE_YAML = """
name: digest
recommendations: 3
variants:
  - language: en
    subject: "{{ user.name|default('Hello') }}, picked for you"
    html: |
      <html><body>{% for r in recommendations %}<a href="{{ r.url }}">{{ r.title }}</a>
      {% endfor %}<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>
    text: "{% for r in recommendations %}{{ r.title }}\\n{% endfor %}"
"""
_ids = itertools.count()


@pytest.fixture
def settings(database_url: str, sink: SmtpSink) -> Settings:
    return Settings(
        database_url=database_url, demo=False,
        tracking_secret=SECRET, public_base_url=BASE, smtp_host=sink.host, smtp_port=sink.port,
    )


@pytest.fixture
def clock() -> list[datetime]:
    return [datetime(2026, 3, 2, 10, 0, tzinfo=UTC)]


def _event(kind: str, user: str, item: str) -> dict[str, Any]:
    return {
        "event_id": f"m-{next(_ids)}", "type": kind, "user_id": user, "item_id": item,
        "timestamp": (datetime.now(UTC) - timedelta(minutes=10)).isoformat(),
    }


def _shop(client: TestClient, keys: TenantKeys, *, users: tuple[str, ...] = ("ann",)) -> None:
    """Five items, people who viewed some (popularity), consenting users with email."""
    admin = keys.headers("admin")
    for k in range(5):
        body = {"title": f"{keys.tenant} item {k}", "price": 10.0 + k,
                "properties": {"url": f"https://shop.example/{keys.tenant}/{k}"}}
        assert client.put(f"/v1/items/i{k}", json=body, headers=admin).status_code == 200
    for user in users:
        profile = {"name": user.title(), "email": f"{user}@example.com"}
        assert client.put(f"/v1/users/{user}", json={"profile": profile},
                          headers=admin).status_code == 200
        consent = {"purpose": "email_marketing", "state": "granted"}
        assert client.post(f"/v1/users/{user}/consents", json=consent,
                           headers=admin).status_code == 201
    for other, item in [("x1", "i1"), ("x2", "i1"), ("x3", "i2"), ("x1", "i3"), ("x2", "i0")]:
        assert client.post("/v1/events", json=_event("view", other, item),
                           headers=keys.headers("ingest")).status_code == 200


def _put_template(client: TestClient, headers: dict[str, str], text: str = TEMPLATE_YAML,
                  name: str = "digest") -> Any:
    return client.put(f"/v1/messaging/templates/{name}", content=text.encode(),
                      headers={**headers, "Content-Type": "application/yaml"})


def test_template_crud_in_yaml_and_json(client: TestClient, admin: dict[str, str]) -> None:
    created = _put_template(client, admin)
    assert created.status_code == 200, created.text
    assert created.json()["variants"][0]["language"] == "en"
    as_json = {"channel": "inbox", "recommendations": 0,
               "variants": [{"subject": "Hi {{ user.name }}", "text": "hello"}]}
    assert client.put("/v1/messaging/templates/note", json=as_json,
                      headers=admin).status_code == 200
    listed = client.get("/v1/messaging/templates", headers=admin).json()["templates"]
    assert [(t["name"], t["channel"], t["variants"]) for t in listed] == [
        ("digest", "email", ["en/formal"]), ("note", "inbox", ["en/formal"])]
    assert client.get("/v1/messaging/templates/note", headers=admin).json()["channel"] == "inbox"
    assert client.delete("/v1/messaging/templates/note", headers=admin).status_code == 204
    missing = client.get("/v1/messaging/templates/note", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "name"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"variants": [{"tone": "rude"}]}, "variants.0.tone"),
        ({"variants": [{"html": "{% for x in %}"}]}, "variants.0.html"),
        ({"name": "other", "variants": [{"text": "x"}]}, "name"),
    ],
)
def test_invalid_templates_are_refused_naming_the_field(
    client: TestClient, admin: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = client.put("/v1/messaging/templates/broken", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert client.get("/v1/messaging/templates/broken", headers=admin).status_code == 404


def test_preview_renders_the_persons_own_recommendations(
    client: TestClient, tenant_a: TenantKeys, admin: dict[str, str]
) -> None:
    _shop(client, tenant_a)
    client.post("/v1/events", json=_event("view", "ann", "i1"), headers=tenant_a.headers("ingest"))
    assert _put_template(client, admin).status_code == 200
    preview = client.post("/v1/messaging/templates/digest/preview", json={"user_id": "ann"},
                          headers=admin)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    served = client.post("/v1/recommendations",
                         json={"user_id": "ann", "n": 3, "log_impression": False},
                         headers=tenant_a.headers("serve")).json()
    assert body["recommendations"] == [i["item_id"] for i in served["items"]]
    assert len(body["recommendations"]) == 3
    assert body["subject"] == "Ann, picked for you"
    for item_id in body["recommendations"]:
        assert f"default item {item_id[1:]}</a>" in body["html"]
        assert f"https://shop.example/default/{item_id[1:]}" in body["html"]  # untracked
    assert client.post("/v1/messaging/templates/digest/preview", json={"user_id": "nobody"},
                       headers=admin).status_code == 404


def test_scopes_are_enforced(client: TestClient, tenant_a: TenantKeys) -> None:
    assert _put_template(client, tenant_a.headers("admin")).status_code == 200
    for scope in ("serve", "ingest"):
        headers = tenant_a.headers(scope)
        assert client.get("/v1/messaging/templates", headers=headers).status_code == 403
        assert _put_template(client, headers).status_code == 403
        assert client.post("/v1/messaging/templates/digest/preview", json={"user_id": "u"},
                           headers=headers).status_code == 403
        assert client.get("/v1/messaging/outbox", headers=headers).status_code == 403
    assert client.get("/v1/messaging/templates").status_code == 401
    inbox = "/v1/messaging/inbox/u1"
    assert client.get(inbox, headers=tenant_a.headers("ingest")).status_code == 403
    assert client.get(inbox).status_code == 401
    assert client.get(inbox, headers=tenant_a.headers("serve")).status_code == 200


def test_tenants_are_isolated(
    client: TestClient, tenant_a: TenantKeys, tenant_b: TenantKeys, messaging: MessagingRuntime,
    sink: SmtpSink,
) -> None:
    _shop(client, tenant_a)
    a, b = tenant_a.headers("admin"), tenant_b.headers("admin")
    assert _put_template(client, a).status_code == 200
    assert client.get("/v1/messaging/templates", headers=b).json() == {"templates": []}
    assert client.get("/v1/messaging/templates/digest", headers=b).status_code == 404
    campaign = {"name": "spring", "template": "digest", "send_at": "2026-03-01T00:00:00Z"}
    refused = client.post("/v1/messaging/campaigns", json=campaign, headers=b)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "template"
    sent = client.post("/v1/messaging/campaigns", json=campaign, headers=a)
    assert sent.json()["enqueued"] == 1
    messaging.worker.run_until_idle()
    assert len(sink.handler.message_ids) == 1
    assert client.get("/v1/messaging/outbox", headers=a).json()["counts"] == {"sent": 1}
    assert client.get("/v1/messaging/outbox", headers=b).json()["counts"] == {}
    [message_id] = [m.strip("<>").split("@")[0] for m in sink.handler.message_ids]
    assert client.get(f"/v1/messaging/outbox/{message_id}", headers=a).json()["status"] == "sent"
    assert client.get(f"/v1/messaging/outbox/{message_id}", headers=b).status_code == 404


def _mail_links(sink: SmtpSink, index: int = -1) -> tuple[str, list[str], str]:
    mail = sink.handler.messages()[index]
    html = mail.get_body(("html",)).get_content()
    clicks = re.findall(rf'href="({re.escape(BASE)}/t/c/[^"]+)"', html)
    pixel = re.search(rf'src="({re.escape(BASE)}/t/o/[^"]+)"', html)
    assert pixel is not None
    unsubscribe = re.search(r"<(https://[^>]+/u/[^>]+)>", str(mail["List-Unsubscribe"]))
    assert unsubscribe is not None and mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return pixel.group(1), clicks, unsubscribe.group(1)


def _path(url: str) -> str:
    return urlsplit(url).path


def test_opens_and_clicks_become_events_and_redirect_only_to_stored_urls(
    client: TestClient, tenant_a: TenantKeys, messaging: MessagingRuntime, stores: Stores,
    sink: SmtpSink,
) -> None:
    _shop(client, tenant_a)
    admin = tenant_a.headers("admin")
    assert _put_template(client, admin).status_code == 200
    campaign = {"name": "news", "template": "digest", "send_at": "2026-03-01T00:00:00Z"}
    assert client.post("/v1/messaging/campaigns", json=campaign, headers=admin).status_code == 200
    messaging.worker.run_until_idle()
    pixel, clicks, _ = _mail_links(sink)
    assert clicks

    opened = client.get(_path(pixel))
    assert opened.status_code == 200 and opened.headers["content-type"] == "image/gif"
    assert opened.content.startswith(b"GIF89a")
    events = stores.events.for_user("default", "ann", types=["email_open", "email_click"])
    assert [e.type for e in events] == ["email_open"]
    assert events[0].recommendation_id is not None

    redirect = client.get(_path(clicks[0]), follow_redirects=False)
    assert redirect.status_code == 302
    target = redirect.headers["location"]
    assert re.fullmatch(r"https://shop\.example/default/\d", target)
    [click] = stores.events.for_user("default", "ann", types=["email_click"])
    assert click.item_id == f"i{target[-1]}"

    tampered = _path(clicks[0])[:-3] + ("AAA" if not clicks[0].endswith("AAA") else "BBB")
    assert client.get(tampered, follow_redirects=False).status_code == 401
    bad_pixel = client.get("/t/o/not-a-valid-token")
    assert bad_pixel.status_code == 200 and bad_pixel.content.startswith(b"GIF")
    assert len(stores.events.for_user("default", "ann", types=["email_open", "email_click"])) == 2


def test_unsubscribe_stops_the_very_next_send(
    client: TestClient, tenant_a: TenantKeys, messaging: MessagingRuntime, sink: SmtpSink,
    clock: list[datetime],
) -> None:
    _shop(client, tenant_a)
    admin = tenant_a.headers("admin")
    assert _put_template(client, admin).status_code == 200
    first = {"name": "one", "template": "digest", "send_at": "2026-03-01T00:00:00Z"}
    assert client.post("/v1/messaging/campaigns", json=first, headers=admin).status_code == 200
    messaging.worker.run_until_idle()
    _, _, unsubscribe = _mail_links(sink)

    second = {"name": "two", "template": "digest", "send_at": "2026-03-01T00:00:00Z"}
    assert client.post("/v1/messaging/campaigns", json=second, headers=admin).json()[
        "enqueued"] == 1
    page = client.get(_path(unsubscribe))
    assert page.status_code == 200 and "<form method='post'" in page.text
    assert not messaging.state.suppressions.is_suppressed("default", "ann", "email")  # GET: no
    one_click = client.post(_path(unsubscribe), content=b"List-Unsubscribe=One-Click",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert one_click.status_code == 200 and "Unsubscribed" in one_click.text

    clock[0] += timedelta(minutes=1)
    messaging.worker.run_until_idle()
    assert len(sink.handler.message_ids) == 1
    assert client.get("/v1/messaging/outbox", headers=admin).json()["counts"] == {
        "sent": 1, "suppressed": 1}
    assert client.post("/u/forged.token", content=b"").status_code == 400


def test_journeys_from_yaml_and_the_builtin_examples(
    client: TestClient, admin: dict[str, str]
) -> None:
    journey = """
trigger: {event: add_to_cart}
exit_on: [purchase]
steps:
  - {type: wait, id: grace, duration: 4h}
  - {type: send, id: nudge, template: digest}
"""
    saved = client.put("/v1/messaging/journeys/nudge", content=journey.encode(),
                       headers={**admin, "Content-Type": "application/yaml"})
    assert saved.status_code == 200, saved.text
    assert saved.json()["missing_templates"] == ["digest"]
    assert saved.json()["document"]["steps"][0]["duration"] == "4h"
    bad = client.put("/v1/messaging/journeys/bad", json={"trigger": {"event": "view"},
                     "steps": [{"type": "wait", "id": "w", "duration": "soon"}]}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["field"].startswith("steps.0")

    enabled = client.post("/v1/messaging/journeys/abandoned_cart/enable", headers=admin)
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    assert client.post("/v1/messaging/journeys/nudge/disable", headers=admin).json()[
        "enabled"] is False
    listed = client.get("/v1/messaging/journeys", headers=admin).json()
    assert {(j["name"], j["enabled"]) for j in listed["journeys"]} == {
        ("abandoned_cart", True), ("nudge", False)}
    assert "win_back" in listed["builtin"]
    assert client.post("/v1/messaging/journeys/nope/enable", headers=admin).status_code == 404


def test_inbox_channel_list_and_mark_read(
    client: TestClient, tenant_a: TenantKeys, tenant_b: TenantKeys, messaging: MessagingRuntime,
) -> None:
    _shop(client, tenant_a)
    admin = tenant_a.headers("admin")
    client.post("/v1/users/ann/consents", json={"purpose": "push_marketing", "state": "granted"},
                headers=admin)
    note = {"channel": "inbox", "recommendations": 0,
            "variants": [{"subject": "Hi {{ user.name }}", "text": "A note"}]}
    assert client.put("/v1/messaging/templates/note", json=note, headers=admin).status_code == 200
    campaign = {"name": "notes", "template": "note", "channel": "inbox",
                "send_at": "2026-03-01T00:00:00Z"}
    assert client.post("/v1/messaging/campaigns", json=campaign, headers=admin).json()[
        "enqueued"] == 1
    messaging.worker.run_until_idle()
    serve = tenant_a.headers("serve")
    [entry] = client.get("/v1/messaging/inbox/ann", headers=serve).json()["entries"]
    assert entry["subject"] == "Hi Ann" and entry["read_at"] is None
    assert client.get("/v1/messaging/inbox/ann", headers=tenant_b.headers("serve")).json()[
        "entries"] == []
    other = client.post("/v1/messaging/inbox/ann/read", json={"entry_ids": [entry["entry_id"]]},
                        headers=tenant_b.headers("serve"))
    assert other.json() == {"changed": 0}
    read = client.post("/v1/messaging/inbox/ann/read", json={"entry_ids": [entry["entry_id"]]},
                       headers=serve)
    assert read.json() == {"changed": 1}
    assert client.get("/v1/messaging/inbox/ann?unread_only=true", headers=serve).json()[
        "entries"] == []


def test_kpis_count_the_emails_the_outbox_sent(
    client: TestClient, tenant_a: TenantKeys, messaging: MessagingRuntime, sink: SmtpSink
) -> None:
    _shop(client, tenant_a, users=("ann", "bob"))
    admin = tenant_a.headers("admin")
    assert _put_template(client, admin).status_code == 200
    plain = TEMPLATE_YAML.replace("recommendations: 3", "recommendations: 0").replace(
        "name: digest", "name: plain")
    assert _put_template(client, admin, plain, name="plain").status_code == 200
    for name, template in (("news", "digest"), ("notice", "plain")):
        campaign = {"name": name, "template": template, "send_at": "2026-03-01T00:00:00Z"}
        got = client.post("/v1/messaging/campaigns", json=campaign, headers=admin)
        assert got.status_code == 200, got.text
    messaging.worker.run_until_idle()
    assert len(sink.handler.message_ids) == 4
    window = {"since": "2026-03-01T00:00:00Z", "until": "2026-03-03T00:00:00Z"}
    kpis = client.get("/v1/kpis", params={**window, "group_by": "channel"}, headers=admin)
    assert kpis.status_code == 200, kpis.text
    total = kpis.json()["total"]
    assert total["emails_sent"] == 4
    # the two digests carried recommendations, the two plain notices none
    assert total["personalized_email_share"] == pytest.approx(0.5)
    assert kpis.json()["groups"]["email"]["emails_sent"] == 4
    # a message sent is not a visit of the person: ann and bob are not units of the window
    assert total["units"] == 0 and total["sessions"] == 0
