"""A/B/n tests of messages over HTTP, a SQLite file and a real local SMTP server: assignment
through the experiments engine (deterministic, balanced), every recipient exactly one variant
exactly once (a second worker over the same database sends nothing again), results computed
from opens / clicks / unsubscribes recorded through the tracking endpoints, the winner sent
once to the people held back, and bad definitions refused naming the field."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _messaging_app import clocked_messaging, smtp_sink  # noqa: F401 - fixtures
from fastapi.testclient import TestClient

from personify.experiments.stats import sample_ratio_check
from personify.messaging.campaigns import Campaign
from personify.messaging.message_tests import variant_for
from personify.runtime.container import build_runtime
from personify.runtime.messaging import MessagingRuntime
from personify.settings import Settings

pytest.importorskip("aiosmtpd")

from personify.messaging.smtp_sink import SmtpSink

if TYPE_CHECKING:
    from conftest import TenantKeys

SECRET = "tracking-secret-for-the-ab-tests-0123"
BASE = "https://api.example"
SEND_AT = "2026-03-02T09:00:00Z"
PEOPLE = [f"p{k:02d}" for k in range(40)]
TEMPLATES: dict[str, dict[str, Any]] = {
    "digest": {"name": "digest", "recommendations": 2, "variants": [
        {"tone": "formal", "subject": "Your selection, {{ user.name }}",
         "html": '<p>{% for r in recommendations %}<a href="{{ r.url }}">{{ r.title }}</a>'
                 "{% endfor %}</p>", "text": "hello"},
        {"tone": "informal", "subject": "Hey {{ user.name }}!",
         "html": '<p>{% for r in recommendations %}<a href="{{ r.url }}">{{ r.title }}</a>'
                 "{% endfor %}</p>", "text": "hey"}]},
    "bold": {"name": "bold", "recommendations": 2, "variants": [
        {"subject": "Bold picks", "html": '<p>{% for r in recommendations %}<a href="{{ r.url }}">'
                                          "{{ r.title }}</a>{% endfor %}</p>", "text": "bold"}]},
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ab.db'}"


@pytest.fixture
def settings(database_url: str, sink: SmtpSink) -> Settings:
    return Settings(
        database_url=database_url, demo=False, tracking_secret=SECRET, public_base_url=BASE,
        smtp_host=sink.host, smtp_port=sink.port,
    )


@pytest.fixture
def clock() -> list[datetime]:
    return [datetime(2026, 3, 2, 10, 0, tzinfo=UTC)]  # daytime: outside quiet hours


def _shop(client: TestClient, keys: TenantKeys, people: list[str]) -> None:
    admin = keys.headers("admin")
    for k in range(3):
        body = {"title": f"item {k}", "price": 10.0 + k,
                "properties": {"url": f"https://shop.example/{k}"}}
        assert client.put(f"/v1/items/i{k}", json=body, headers=admin).status_code == 200
    for user in people:
        profile = {"name": user.upper(), "email": f"{user}@example.com"}
        assert client.put(f"/v1/users/{user}", json={"profile": profile},
                          headers=admin).status_code == 200
        consent = {"purpose": "email_marketing", "state": "granted"}
        assert client.post(f"/v1/users/{user}/consents", json=consent,
                           headers=admin).status_code == 201
    for name, template in TEMPLATES.items():
        assert client.put(f"/v1/messaging/templates/{name}", json=template,
                          headers=admin).status_code == 200


def _mails(sink: SmtpSink) -> dict[str, list[Any]]:
    """The sink's messages per recipient user id."""
    found: dict[str, list[Any]] = {}
    for mail in sink.handler.messages():
        address = mail["To"].addresses[0].addr_spec
        found.setdefault(address.split("@")[0], []).append(mail)
    return found


def _links(mail: Any) -> tuple[str, list[str], str]:
    html = mail.get_body(("html",)).get_content()
    pixel = re.search(rf'src="{re.escape(BASE)}(/t/o/[^"]+)"', html)
    clicks = re.findall(rf'href="{re.escape(BASE)}(/t/c/[^"]+)"', html)
    unsubscribe = re.search(r"<https://[^>]+(/u/[^>]+)>", str(mail["List-Unsubscribe"]))
    assert pixel is not None and clicks and unsubscribe is not None
    return pixel.group(1), clicks, unsubscribe.group(1)


def _second_worker(settings: Settings, clock: list[datetime]) -> int:
    """A worker restarted over the same database: one full round, returns messages handled."""
    runtime = build_runtime(settings, clock=lambda: clock[0])
    try:
        handled = runtime.messaging.run_once()
        return handled + runtime.messaging.decide_message_tests()
    finally:
        runtime.close()


def test_assignment_is_deterministic_balanced_and_holds_back_the_rest() -> None:
    document = {
        "name": "spring", "template": "digest", "send_at": SEND_AT,
        "variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.3},
                     {"name": "c", "weight": 0.2}],
    }
    experiment = Campaign.model_validate(document).experiment()
    users = [f"u{k}" for k in range(6_000)]
    first = [variant_for(experiment, u) for u in users]
    assert first == [variant_for(Campaign.model_validate(document).experiment(), u)
                     for u in users]
    counts = Counter(first)
    assert None not in counts
    check = sample_ratio_check({k: counts[k] for k in "abc"}, {"a": 0.5, "b": 0.3, "c": 0.2})
    assert check.ok, (counts, check)
    assert abs(counts["a"] / len(users) - 0.5) < 0.03

    held = Campaign.model_validate({**document, "winner": {"test_share": 0.2}}).experiment()
    tested = [variant_for(held, u) for u in users]
    share = sum(v is not None for v in tested) / len(users)
    assert 0.17 < share < 0.23, share
    # the people tested keep the weights among themselves
    inner = Counter(v for v in tested if v is not None)
    assert sample_ratio_check(dict(inner), {"a": 0.5, "b": 0.3, "c": 0.2}).ok


def test_test_then_winner_to_the_rest_once_with_results_from_tracked_events(
    client: TestClient, tenant_a: TenantKeys, messaging: MessagingRuntime, sink: SmtpSink,
    settings: Settings, clock: list[datetime],
) -> None:
    _shop(client, tenant_a, PEOPLE)
    admin = tenant_a.headers("admin")
    campaign = {
        "name": "ab1", "template": "digest", "send_at": SEND_AT, "primary_metric": "clicks",
        "variants": [
            {"name": "control"},
            {"name": "bold", "template": "bold", "subject": "Just for you, {{ user.name }}",
             "tone": "informal"},
        ],
        "winner": {"test_share": 0.5, "after": "2h", "if_no_winner": "control"},
    }
    posted = client.post("/v1/messaging/campaigns", json=campaign, headers=admin)
    assert posted.status_code == 200, posted.text
    experiment = Campaign.model_validate(campaign).experiment()
    expected = {u: variant_for(experiment, u) for u in PEOPLE}
    tested = {u: v for u, v in expected.items() if v is not None}
    assert posted.json()["enqueued"] == len(tested) and 0 < len(tested) < len(PEOPLE)
    assert posted.json()["variants"] == ["control", "bold"]
    assert posted.json()["decide_at"].startswith("2026-03-02T11:00")
    # re-posting the campaign is idempotent
    again = client.post("/v1/messaging/campaigns", json=campaign, headers=admin)
    assert again.json()["enqueued"] == 0

    messaging.run_once()
    assert _second_worker(settings, clock) == 0  # restarted worker: nothing sent twice
    mails = _mails(sink)
    assert set(mails) == set(tested)
    assert all(len(m) == 1 for m in mails.values())
    for user, [mail] in mails.items():
        subject = str(mail["Subject"])
        if tested[user] == "bold":
            assert subject == f"Just for you, {user.upper()}"
        else:
            assert subject == f"Your selection, {user.upper()}"  # formal: the person's tone

    # every bold recipient opens and clicks; one control recipient opens; one unsubscribes
    bold = sorted(u for u, v in tested.items() if v == "bold")
    control = sorted(u for u, v in tested.items() if v == "control")
    assert len(bold) >= 5 and len(control) >= 5
    for user in bold:
        pixel, clicks, _ = _links(mails[user][0])
        assert client.get(pixel).status_code == 200
        assert client.get(clicks[0], follow_redirects=False).status_code == 302
    pixel, _, unsubscribe = _links(mails[control[0]][0])
    assert client.get(pixel).status_code == 200
    assert client.post(unsubscribe, content=b"List-Unsubscribe=One-Click", headers={
        "Content-Type": "application/x-www-form-urlencoded"}).status_code == 200
    purchase = {"event_id": "buy-1", "type": "purchase", "user_id": bold[0], "item_id": "i1",
                "value": 25.0, "timestamp": datetime.now(UTC).isoformat()}
    assert client.post("/v1/events", json=purchase,
                       headers=tenant_a.headers("ingest")).status_code == 200

    results = client.get("/v1/messaging/campaigns/ab1/results", headers=admin)
    assert results.status_code == 200, results.text
    body = results.json()
    by_name = {v["name"]: v for v in body["variants"]}
    assert by_name["bold"]["sent"] == len(bold) and by_name["control"]["sent"] == len(control)
    assert by_name["bold"]["opens"] == len(bold) and by_name["bold"]["clicks"] == len(bold)
    assert by_name["control"]["opens"] == 1 and by_name["control"]["clicks"] == 0
    assert by_name["control"]["unsubscribes"] == 1 and by_name["bold"]["unsubscribes"] == 0
    assert by_name["bold"]["conversions"] == 1 and by_name["bold"]["revenue"] == 25.0
    assert by_name["bold"]["revenue_per_recipient"] == pytest.approx(25.0 / len(bold))
    assert by_name["control"]["unsubscribe_rate"] == pytest.approx(1 / len(control))
    assert body["final"] is False and body["decision"]["status"] == "testing"
    clicks_row = next(c for c in body["comparisons"] if c["metric"] == "clicks")
    assert clicks_row["variant_value"] == 1.0 and clicks_row["control_value"] == 0.0
    assert {c["metric"] for c in body["comparisons"]} == {
        "opens", "clicks", "conversion", "revenue", "unsubscribes"}

    # before the time (send_at + 2 h): no winner yet
    assert messaging.decide_message_tests() == 0
    clock[0] += timedelta(hours=1, minutes=30)
    # after it: bold wins and goes to the rest, exactly once, even with a second worker
    rest = [u for u, v in expected.items() if v is None]
    assert messaging.decide_message_tests() == len(rest)
    assert messaging.decide_message_tests() == 0
    messaging.run_once()
    assert _second_worker(settings, clock) == 0
    mails = _mails(sink)
    assert set(mails) == set(PEOPLE) and all(len(m) == 1 for m in mails.values())
    for user in rest:
        assert str(mails[user][0]["Subject"]) == f"Just for you, {user.upper()}"
    decided = client.get("/v1/messaging/campaigns/ab1/results", headers=admin).json()
    assert decided["final"] is True
    assert decided["decision"]["winner"] == "bold" and decided["decision"]["significant"]
    assert decided["decision"]["sent_to_rest"] == len(rest)
    # the rest's sends are not counted as test recipients
    assert {v["name"]: v["sent"] for v in decided["variants"]} == {
        "control": len(control), "bold": len(bold)}


def test_without_a_significant_winner_the_rule_sends_the_control(
    client: TestClient, tenant_a: TenantKeys, messaging: MessagingRuntime, sink: SmtpSink,
    clock: list[datetime],
) -> None:
    _shop(client, tenant_a, PEOPLE[:20])
    admin = tenant_a.headers("admin")
    campaign = {
        "name": "ab2", "template": "digest", "send_at": SEND_AT,
        "variants": [{"name": "plain"}, {"name": "bold", "template": "bold"}],
        "winner": {"test_share": 0.5, "min_recipients": 3},
    }
    assert client.post("/v1/messaging/campaigns", json=campaign, headers=admin).status_code == 200
    messaging.run_once()
    # nobody opened: the sample is reached (min_recipients) but nothing is significant
    assert messaging.decide_message_tests() > 0
    decision = client.get("/v1/messaging/campaigns/ab2/results", headers=admin).json()["decision"]
    assert decision["winner"] == "plain" and decision["significant"] is False
    assert "if_no_winner=control" in decision["reason"]
    messaging.run_once()
    mails = _mails(sink)
    assert set(mails) == set(PEOPLE[:20]) and all(len(m) == 1 for m in mails.values())


BAD_TESTS: list[tuple[dict[str, Any], str]] = [
    ({"variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.4}]},
     "variants.weight"),
    ({"variants": [{"name": "a", "weight": 0.5}, {"name": "b"}]}, "variants.1.weight"),
    ({"variants": []}, "variants"),
    ({"variants": [{"name": "a"}]}, "variants"),
    ({"variants": [{"name": "a"}, {"name": "a"}]}, "variants.name"),
    ({"variants": [{"name": "a"}, {"name": "b", "template": "nope"}]},
     "variants.1.template"),
    ({"variants": [{"name": "a"}, {"name": "b", "subject": "{{ broken"}]},
     "variants.1.subject"),
    ({"variants": [{"name": "a"}, {"name": "b", "tone": "shouty"}]}, "variants.1.tone"),
    ({"winner": {"test_share": 0.2}}, "winner"),
    ({"variants": [{"name": "a"}, {"name": "b"}], "winner": {"test_share": 1.0}},
     "winner.test_share"),
    ({"variants": [{"name": "a"}, {"name": "b"}], "primary_metric": "likes"},
     "primary_metric"),
]


def test_bad_tests_are_refused_naming_the_field(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    _shop(client, tenant_a, PEOPLE[:2])
    admin = tenant_a.headers("admin")
    for change, field in BAD_TESTS:
        campaign = {"name": "bad", "template": "digest", "send_at": SEND_AT, **change}
        refused = client.post("/v1/messaging/campaigns", json=campaign, headers=admin)
        assert refused.status_code == 422, (change, refused.text)
        assert refused.json()["error"]["field"] == field, (change, refused.json())
    listed = client.get("/v1/messaging/campaigns", headers=admin).json()["campaigns"]
    assert listed == []  # nothing refused was stored


def test_results_of_unknown_or_plain_campaigns(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    _shop(client, tenant_a, PEOPLE[:2])
    admin = tenant_a.headers("admin")
    missing = client.get("/v1/messaging/campaigns/nope/results", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "name"
    plain = {"name": "plain", "template": "digest", "send_at": SEND_AT}
    assert client.post("/v1/messaging/campaigns", json=plain, headers=admin).status_code == 200
    refused = client.get("/v1/messaging/campaigns/plain/results", headers=admin)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "name"


JOURNEY = {
    "name": "hello_ab", "trigger": {"event": "view"}, "consent_purpose": "email_marketing",
    "steps": [{"type": "send", "id": "hello", "template": "digest", "primary_metric": "clicks",
               "variants": [{"name": "control"},
                            {"name": "bold", "template": "bold",
                             "subject": "Bold hello, {{ user.name }}"}]}],
}


def test_a_journey_step_with_variants_is_assigned_sent_and_analysed(
    client: TestClient, tenant_a: TenantKeys, messaging: MessagingRuntime, sink: SmtpSink,
    clock: list[datetime],
) -> None:
    from personify.messaging.journey_definitions import SendStep, parse_journey
    from personify.messaging.message_tests import step_experiment

    _shop(client, tenant_a, PEOPLE)
    admin = tenant_a.headers("admin")
    put = client.put("/v1/messaging/journeys/hello_ab", json=JOURNEY, headers=admin)
    assert put.status_code == 200, put.text
    step = parse_journey(JOURNEY).steps[0]
    assert isinstance(step, SendStep) and step.variants
    experiment = step_experiment("hello_ab", "hello", step.variants, "clicks")
    expected = {u: variant_for(experiment, u) for u in PEOPLE}
    assert set(expected.values()) == {"control", "bold"}, "no holdout: everyone is tested"
    views = [{"event_id": f"view-{u}", "type": "view", "user_id": u, "item_id": "i0",
              "timestamp": clock[0].isoformat()} for u in PEOPLE]
    assert client.post("/v1/events/batch", json={"events": views},
                       headers=tenant_a.headers("ingest")).status_code == 200
    messaging.run_once()
    messaging.run_once()
    mails = _mails(sink)
    assert set(mails) == set(PEOPLE) and all(len(m) == 1 for m in mails.values())
    for user, [mail] in mails.items():
        want = (f"Bold hello, {user.upper()}" if expected[user] == "bold"
                else f"Your selection, {user.upper()}")
        assert str(mail["Subject"]) == want
    bold = sorted(u for u, v in expected.items() if v == "bold")
    control = sorted(u for u, v in expected.items() if v == "control")
    for user in bold:
        pixel, clicks, _ = _links(mails[user][0])
        assert client.get(pixel).status_code == 200
        assert client.get(clicks[0], follow_redirects=False).status_code == 302

    results = client.get("/v1/messaging/journeys/hello_ab/steps/hello/results", headers=admin)
    assert results.status_code == 200, results.text
    body = results.json()
    assert body["test"] == "journey:hello_ab:hello" and body["primary_metric"] == "clicks"
    by_name = {v["name"]: v for v in body["variants"]}
    assert by_name["bold"]["sent"] == len(bold) and by_name["control"]["sent"] == len(control)
    assert by_name["bold"]["clicks"] == len(bold) and by_name["control"]["clicks"] == 0
    clicks_row = next(c for c in body["comparisons"] if c["metric"] == "clicks")
    assert clicks_row["variant"] == "bold" and clicks_row["p_value"] < 0.01

    missing = client.get("/v1/messaging/journeys/hello_ab/steps/nope/results", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "step"
    for variants, says in (([{"name": "control"}], "at least 2 variants"),
                           ([{"name": "a"}, {"name": "a"}], "unique"),
                           ([{"name": "a"}, {"name": "b", "send_at": SEND_AT}], "send_at")):
        bad = {**JOURNEY, "steps": [{**JOURNEY["steps"][0], "variants": variants}]}
        r = client.put("/v1/messaging/journeys/hello_ab", json=bad, headers=admin)
        assert r.status_code == 422 and says in r.text, r.text
        assert r.json()["error"]["field"].startswith("steps.0"), r.text
