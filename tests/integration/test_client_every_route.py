"""Every method of the client against a live server: each answer decodes into its declared
result, and a recording transport proves that every endpoint of the client was called (a new
method without a call here fails). The sync client walks the whole API; the async client runs
the same plans through its own I/O for a sample of the calls."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from _uvicorn_server import admin_server, sqlite_stores

from personify.client import (
    AsyncPersonifyClient,
    Decision,
    ErasureReceipt,
    PersonifyClient,
    Recommendations,
)
from personify.client._calls import Endpoint, Endpoints
from personify.domain.errors import InvalidInput, NotFound
from personify.domain.keys import Scope
from personify.domain.privacy import Preferences
from personify.domain.users import User
from personify.storage.registry import Stores


class Recording(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.method, request.url.raw_path.decode().split("?")[0]))
        return super().handle_request(request)


def uncalled(sent: list[tuple[str, str]]) -> set[str]:
    """Endpoints whose route no recorded request matched."""
    missing = set()
    for name, value in vars(Endpoints).items():
        if not isinstance(value, Endpoint):
            continue
        pattern = re.sub(r"\\{\w+\\}", "[^/]+", re.escape(value.route))
        if not any(m == value.method and re.fullmatch(pattern, p) for m, p in sent):
            missing.add(name)
    return missing


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Stores]]:
    with sqlite_stores(tmp_path, "every.db") as stores, admin_server(stores) as (url, secret):
        yield url, secret, stores


def test_every_client_method_against_the_server(server: tuple[str, str, Stores]) -> None:
    url, secret, stores = server
    recording = Recording()
    now = datetime.now(UTC)
    people = ["ana", "bo", "cy", "di"]
    with PersonifyClient(url, secret, transport=recording) as c:
        assert c.health()["status"] == "ok" and c.ready()["status"] == "ready"
        # ingestion
        c.bulk_upsert_users([{"user_id": p, "profile": {"email": f"{p}@example.com",
                                                        "interests": ["tea"]}} for p in people])
        c.put_user({"user_id": "ana", "profile": {"name": "Ana", "email": "ana@example.com"}})
        assert c.patch_user("ana", {"profile": {"city": "Niš"}}).profile.city == "Niš"
        assert isinstance(c.get_user("ana"), User) and c.list_users(limit=10)
        c.add_alias("ana", "cookie-ana")
        c.bulk_upsert_items([{"item_id": f"i{k}", "title": f"Tea {k}",
                              "categories": ["tea" if k % 2 else "cups"]} for k in range(8)])
        c.put_item({"item_id": "i9", "title": "Kettle"})
        c.patch_item("i9", {"tags": ["new"]})
        assert c.get_item("i9").tags == ["new"] and c.list_items(query="Tea")
        c.delete_item("i9")
        assert c.put_event_type("wishlist", weight=2.0, needs_item=True)["name"] == "wishlist"
        assert c.event_type("wishlist")["weight"] == 2.0
        assert "wishlist" in {t["name"] for t in c.event_types()}
        events = [{"event_id": f"e-{p}-{k}", "type": "purchase", "user_id": p,
                   "item_id": f"i{(j + k) % 8}", "timestamp": now - timedelta(hours=3, minutes=k)}
                  for j, p in enumerate(people) for k in range(3)]
        assert c.send_events(events).stored == 12
        unnamed = {"type": "view", "user_id": "bo", "item_id": "i2",
                   "timestamp": now - timedelta(minutes=2)}
        assert c.send_events([unnamed, unnamed]).stored == 2     # two events, two new ids
        assert c.track({"event_id": "w-1", "type": "wishlist", "user_id": "ana", "item_id": "i1",
                        "timestamp": now - timedelta(minutes=1)}).status == "stored"
        assert c.delete_event_type("wishlist") == {"deleted": "wishlist"}
        assert len(c.user_events("ana", limit=2)) == 2
        # consent
        for p in people:
            c.change_consent(p, "personalization", "grant")
        c.record_consent("ana", "email_marketing", "granted")
        assert c.consents("ana").current["email_marketing"].state == "granted"
        assert c.consent_decisions("ana")["decisions"]["personalization"]["allowed"]
        # recommendations
        answer = c.recommend("ana", n=3, explain=True)
        assert isinstance(answer, Recommendations) and answer.items
        every_option = c.recommend(
            anonymous_id="cookie-ana", n=2, item_types=["product"],
            context={"device": "mobile", "channel": "web", "weather": {"condition": "rain"}},
            filters={"categories": ["tea"]}, exclude={"bought": False, "seen_days": 1},
            rules={"promoted": ["i3"]}, diversity={"max_per_category": 2},
            repetition={"penalty": 0.5}, sources=["popular", "trending"], explain=True,
            language="ru", log_impression=False, include_items=False)
        assert every_option.items and all(i.item is None for i in every_option.items)
        assert c.recommendations("ana", n=2, categories=["tea"]).items
        assert set(c.rerank(["i1", "i2"], user_id="ana").item_ids) == {"i1", "i2"}
        assert isinstance(c.similar("i1", n=2), Recommendations)
        assert isinstance(c.bought_together("i1", n=2), Recommendations)
        assert c.recommend_session(["i1", "i2"], n=2).recommendation_id
        assert c.explain(answer.recommendation_id)["items"]
        # pages
        c.put_page("shop", {"rows": [{"id": "fresh", "kind": "new_for_you", "n": 2}]})
        assert "shop" in c.pages() and c.page_definition("shop")["definition"]["rows"]
        assert c.page("shop", user_id="ana")["rows"]
        c.delete_page("shop")
        # people and introductions
        for k, (a, b) in enumerate([("ana", "bo"), ("cy", "bo"), ("cy", "di")]):
            c.track({"event_id": f"s-{k}", "type": "follow", "user_id": a,
                     "properties": {"person_id": b}, "timestamp": now - timedelta(hours=1)})
        assert c.people("ana", n=3)["user_id"] == "ana"
        assert c.feed("ana", n=5)["user_id"] == "ana"
        intro = c.request_introduction("ana", "bo")
        assert c.introduction(intro["introduction_id"], as_user="bo")["status"] == "pending"
        assert c.accept_introduction(intro["introduction_id"])["status"] == "accepted"
        other = c.request_introduction("cy", "di")
        assert c.decline_introduction(other["introduction_id"])["status"] == "declined"
        assert c.introduction_kpi()["requested"] >= 2
        proposed = c.propose_introductions("cy", n=2)
        assert isinstance(proposed, list) and len(proposed) <= 2
        # preferences and insights
        assert isinstance(c.put_preferences("bo", {"declared_interests": ["tea"]}), Preferences)
        c.not_interested("bo", item_id="i3")
        assert "i3" in c.preferences("bo").muted_items
        assert c.insights("ana")["user_id"] == "ana"
        assert c.item_insights("i1")["status"] == "ok"
        # segments and KPIs
        assert c.put_segment("buyers", {"name": "Buyers", "text": "frequency >= 1"})["rule"]
        c.refresh_segments()
        assert c.segment("buyers")["segment_id"] == "buyers"
        assert "user_ids" in c.segment_members("buyers")
        assert all("members" in point for point in c.segment_counts("buyers"))
        assert "buyers" in {s["segment_id"] for s in c.segments()["segments"]}
        c.delete_segment("buyers")
        assert c.kpis(group_by="none")["events"] > 0
        # experiments and decisions
        c.create_experiment({"name": "exp", "layer": "l", "traffic": 1.0, "sequential": True,
                             "variants": [{"name": "a", "payload": {}},
                                          {"name": "b", "payload": {}}],
                             "primary_metric": {"name": "ctr", "kind": "ratio"}})
        c.start_experiment("exp")
        assert c.experiment("exp")["experiment"]["status"] == "running"
        assert [e["name"] for e in c.experiments(status="running")] == ["exp"]
        given = c.assignments(user_id="ana").assignments[0]
        assert given.experiment == "exp" and given.variant in ("a", "b")
        assert c.expose("exp", user_id="ana", variant=given.variant).logged
        assert not c.expose("exp", user_id="ana", variant=given.variant).logged  # once
        for p in people:
            c.recommend(p, n=2)
        try:
            assert c.experiment_report("exp")["verdict"]
        except InvalidInput as error:  # too few units in a variant: the answer names it
            assert error.field
        c.stop_experiment("exp")
        c.configure_decision_point("offer", {"policy": "linucb", "epsilon": 0.1})
        decision = c.decide("offer", ["a", "b", "c"], k=2, context={"hour": 9})
        assert isinstance(decision, Decision) and len(decision.actions) == 2
        assert "offer" in c.decision_points() and c.decision_point("offer")["point"] == "offer"
        # keys
        created = c.create_key("reader", [Scope.SERVE])
        assert created.key.key_id in {k.key_id for k in c.list_keys()}
        c.revoke_key(created.key.key_id)
        # messaging
        template = {"name": "t", "channel": "email", "recommendations": 2, "variants": [
            {"language": "en", "tone": "formal", "subject": "Hi {{ user.name }}",
             "html": "<p>hi</p>", "text": "hi"}]}
        c.put_template("t", template)
        c.put_template("t2", {**template, "name": "t2"})
        assert c.template("t")["name"] == "t" and len(c.templates()) == 2
        assert c.preview_template("t", "ana")["subject"] == "Hi Ana"
        c.delete_template("t2")
        journey = {"name": "j", "trigger": {"event": "add_to_cart"},
                   "steps": [{"type": "send", "id": "s", "template": "t", "channel": "email"}]}
        assert c.put_journey("j", journey, enabled=False)["enabled"] is False
        assert c.enable_journey("j")["enabled"] and not c.disable_journey("j")["enabled"]
        assert c.journey("j")["name"] == "j"
        assert "j" in {j["name"] for j in c.journeys()["journeys"]}
        with pytest.raises(NotFound):
            c.journey_run("j", "ana")
        try:
            assert "variants" in c.journey_step_results("j", "s", days=7)
        except (InvalidInput, NotFound) as error:  # a step without variants: named
            assert error.field
        c.delete_journey("j")
        sent = c.send_campaign({"name": "camp", "template": "t", "send_at": now,
                                "variants": [{"name": "control"}, {"name": "short",
                                                                   "subject": "Hi"}]})
        assert sent["enqueued"] >= 1 and "camp" in {x["name"] for x in c.campaigns()}
        assert [v["name"] for v in c.campaign_results("camp")["variants"]] == ["control",
                                                                              "short"]
        assert isinstance(c.outbox(), dict)
        with pytest.raises(NotFound):
            c.outbox_message("no-such-message")
        c.put_channel("push", {"url": "https://push.example.com/hook", "secret": "s" * 32,
                               "timeout_s": 3})
        assert c.channel("push")["url"] == "https://push.example.com/hook"
        assert "push" in {x["name"] for x in c.channels()}
        c.delete_channel("push")
        assert c.inbox("ana")["user_id"] == "ana"
        assert c.mark_read("ana", ["no-such-entry"]) == {"changed": 0}
        # privacy: audit, export, erasure, retention
        assert c.audit_log(user_id="ana", limit=5)
        assert c.export_user("ana")["user_id"] == "ana"
        assert c.export_user_zip("ana", anonymized=True)[:2] == b"PK"
        assert isinstance(c.erase_anonymous("cookie-x"), ErasureReceipt)
        assert [r.user_id for r in c.erase_users(["cy", "di"])] == ["cy", "di"]
        assert c.delete_user("ana").profile_deleted
        assert c.purge_retention(audit_days=365)["audit_entries_deleted"] == 0
    assert not uncalled(recording.sent), "add a call of these methods to this test"

    async def async_sample() -> None:
        async with AsyncPersonifyClient(url, secret) as a:
            assert (await a.health())["status"] == "ok"
            assert (await a.bulk_upsert_items([{"item_id": "z1"}, {"item_id": ""}])).accepted == 1
            assert isinstance(await a.recommend("bo", n=2), Recommendations)
            assert isinstance(await a.decide("offer", ["a", "b"]), Decision)
            with pytest.raises(NotFound):
                await a.get_user("ana")

    asyncio.run(async_sample())
    assert stores.users.get("default", "ana") is None
