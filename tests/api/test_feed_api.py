"""GET /v1/users/{id}/feed through the API: people, events, groups, projects and posts mixed by
shares, type-aware rules (upcoming and not full events, projects by skills, groups by topics and
contacts, fresh content), every entry explained; typed items refused with the field; at any hour
(the injected clock reads 03:00 and 23:00 UTC)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from _clocked_app import any_hour_clock, clocked_app, opt_out_settings  # noqa: F401 - fixtures
from fastapi import FastAPI
from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import TenantKeys

_seq = iter(range(1_000_000))


def _send(client: TestClient, keys: TenantKeys, now: datetime,
          events: list[tuple[str, str, dict[str, Any]]]) -> None:
    body = []
    for kind, actor, fields in events:
        body.append({"event_id": f"f{next(_seq)}", "type": kind, "user_id": actor,
                     "timestamp": (now - timedelta(hours=1)).isoformat(), **fields})
    r = client.post("/v1/events/batch", json={"events": body}, headers=keys.headers("ingest"))
    assert r.status_code == 200 and not r.json().get("rejected"), r.text


def _user(client: TestClient, keys: TenantKeys, uid: str, **profile: Any) -> None:
    r = client.put(f"/v1/users/{uid}", json={"profile": profile}, headers=keys.headers())
    assert r.status_code in (200, 201), r.text


def _item(client: TestClient, keys: TenantKeys, iid: str, **body: Any) -> Any:
    return client.put(f"/v1/items/{iid}", json=body, headers=keys.headers())


def _berlin(now: datetime, days: int, hour: int) -> str:
    local = (now + timedelta(days=days)).date()
    return f"{local.isoformat()}T{hour:02d}:00:00"


def _feed(client: TestClient, keys: TenantKeys, uid: str, query: str = "n=30") -> Any:
    r = client.get(f"/v1/users/{uid}/feed?{query}", headers=keys.headers("serve"))
    assert r.status_code == 200, r.text
    return r.json()


def _world(client: TestClient, keys: TenantKeys, now: datetime) -> None:
    _user(client, keys, "me", name="Me", skills=["qiskit"], interests=["qec"],
          time_zone="Europe/Berlin", city="Berlin")
    _user(client, keys, "friend", name="Friend", skills=["qiskit"])
    _user(client, keys, "writer", name="Writer", skills=["qec"])
    for uid in ("p1", "p2", "p3"):
        _user(client, keys, uid, skills=["qiskit"])
    _send(client, keys, now, [
        ("reply", "me", {"properties": {"person_id": "friend", "topics": ["qiskit"]}}),
        ("reply", "friend", {"properties": {"person_id": "me"}}),
        *[("reply", "friend", {"properties": {"person_id": p, "topics": ["qiskit"]}})
          for p in ("p1", "p2", "p3")],
    ])
    ok = {"time_zone": "Europe/Berlin", "city": "Berlin", "capacity": 10}
    for iid, props, tags in [
        ("ev_ok", {**ok, "starts_at": _berlin(now, 3, 18), "ends_at": _berlin(now, 3, 20)},
         ["qiskit"]),
        ("ev_night", {**ok, "starts_at": _berlin(now, 3, 3)}, ["qiskit"]),
        ("ev_full", {**ok, "starts_at": _berlin(now, 4, 18), "capacity": 2, "registered": 1},
         ["qiskit"]),
        ("ev_soon", {**ok, "starts_at": _berlin(now, 1, 19)}, ["qec"]),
        ("ev_other", {**ok, "starts_at": _berlin(now, 2, 18)}, ["cooking"]),
    ]:
        r = _item(client, keys, iid, type="event", title=iid, tags=tags, properties=props)
        assert r.status_code == 200, r.text
    for iid, tags in [("g_q", ["qiskit"]), ("g_friend", ["cooking"]), ("g_mine", ["qec"]),
                      ("g_none", ["cooking"])]:
        assert _item(client, keys, iid, type="group", title=iid, tags=tags).status_code == 200
    for iid, props in [("p_ok", {"required_skills": ["qiskit", "rust"], "roles_open": 2}),
                       ("p_closed", {"required_skills": ["qiskit"], "roles_open": 0}),
                       ("p_java", {"required_skills": ["java"], "roles_open": ["dev"]})]:
        assert _item(client, keys, iid, type="project", title=iid,
                     properties=props).status_code == 200
    posts = [("post_group", "writer", ["cooking"], 1, {"group_id": "g_mine"}),
             ("post_friend", "friend", ["cooking"], 2, {}),
             ("post_fresh", "writer", ["qec"], 1, {}),
             ("post_old", "writer", ["qec"], 40, {}),
             ("post_mine", "me", ["qec"], 1, {}),
             ("post_noise", "writer", ["cooking"], 1, {})]
    for iid, author, tags, age, props in posts:
        r = _item(client, keys, iid, type="post", title=iid, tags=tags, author_id=author,
                  created_at=(now - timedelta(days=age)).isoformat(),
                  properties={**props, "url": f"https://example.org/{iid}"})
        assert r.status_code == 200, r.text
    _send(client, keys, now, [
        ("like", "friend", {"item_id": "g_friend"}),
        ("like", "me", {"item_id": "g_mine"}),
        ("like", "p1", {"item_id": "ev_full"}),  # the last place taken
        ("like", "friend", {"item_id": "ev_ok"}),
    ])


def test_feed_mixes_types_with_rules_and_reasons(client: TestClient, tenant_a: TenantKeys,
                                                  clock: list[datetime]) -> None:
    now = clock[0]
    _world(client, tenant_a, now)
    body = _feed(client, tenant_a, "me")
    entries = body["entries"]
    ids = [e["id"] for e in entries]
    assert all(e["reasons"] and all(r["text"] for r in e["reasons"]) for e in entries)
    assert len(ids) == len(set(ids))
    assert sum(body["counts"].values()) == len(entries)
    # events: upcoming, not full, about the person's topics; the 03:00-local one ranks lower
    events = [e["id"] for e in entries if e["section"] == "events"]
    assert set(events) == {"ev_ok", "ev_night", "ev_soon"}
    assert events.index("ev_ok") < events.index("ev_night")
    ev_ok = next(e for e in entries if e["id"] == "ev_ok")
    kinds = {r["kind"] for r in ev_ok["reasons"]}
    assert {"topics", "contacts", "place", "time"} <= kinds
    assert ev_ok["places_left"] == 9 and ev_ok["local_start"].startswith(_berlin(now, 3, 18))
    # projects: open, needing a skill the person has
    assert [e["id"] for e in entries if e["section"] == "projects"] == ["p_ok"]
    assert "qiskit" in next(e for e in entries if e["id"] == "p_ok")["reasons"][0]["text"]
    # groups: by topic or by contacts; not the one already joined
    groups = {e["id"]: e for e in entries if e["section"] == "groups"}
    assert set(groups) == {"g_q", "g_friend"}
    assert groups["g_friend"]["reasons"][0]["kind"] == "contacts"
    # content: not own, relevant, fresh before old
    content = [e["id"] for e in entries if e["section"] == "content"]
    assert {"post_group", "post_friend", "post_fresh", "post_old"} == set(content)
    assert content.index("post_fresh") < content.index("post_old")
    writer = next(e for e in entries if e["id"] == "post_fresh")["author"]
    assert writer == {"user_id": "writer", "name": "Writer", "profile_url": None}
    # people: the friend's contacts, with the people reasons
    people = [e for e in entries if e["section"] == "people"]
    assert people and {e["id"] for e in people} <= {"p1", "p2", "p3", "writer"}
    # diversity: never three of one section in a row while others remain
    sections = [e["section"] for e in entries]
    for i in range(len(sections) - 2):
        run = sections[i : i + 3]
        if len(set(run)) == 1:
            assert set(sections[i + 3 :]) <= {run[0]}
    # a retry gives the same answer
    assert _feed(client, tenant_a, "me")["entries"] == entries


def test_shares_and_time_and_capacity_change_the_feed(client: TestClient, tenant_a: TenantKeys,
                                                      clock: list[datetime]) -> None:
    now = clock[0]
    _world(client, tenant_a, now)
    only = _feed(client, tenant_a, "me", "n=10&shares=events:1")
    assert {e["section"] for e in only["entries"]} == {"events"}
    assert only["shares"]["events"] == 1.0 and only["shares"]["people"] == 0.0
    mixed = _feed(client, tenant_a, "me", "n=4&shares=events:1,content:1")
    assert mixed["counts"]["events"] == 2 and mixed["counts"]["content"] == 2
    # a short section gives its places to the others
    short = _feed(client, tenant_a, "me", "n=6&shares=projects:1,groups:1")
    assert short["counts"] == {"people": 0, "events": 0, "groups": 2, "projects": 1,
                               "content": 0}
    # one more RSVP fills ev_ok? no: capacity 10. Fill it, and it leaves the feed at once
    _item(client, tenant_a, "ev_ok", type="event", title="ev_ok", tags=["qiskit"],
          properties={"time_zone": "Europe/Berlin", "starts_at": _berlin(now, 3, 18),
                      "capacity": 10, "registered": 9})
    assert "ev_ok" not in [e["id"] for e in _feed(client, tenant_a, "me")["entries"]]
    # time passes: an event that started is gone
    clock[0] = now + timedelta(days=2)
    later = [e["id"] for e in _feed(client, tenant_a, "me")["entries"]]
    assert "ev_soon" not in later and "ev_night" in later


def test_typed_items_refused_naming_the_field(client: TestClient, tenant_a: TenantKeys,
                                              clock: list[datetime]) -> None:
    now = clock[0]

    def put(**props: Any) -> tuple[int, str | None]:
        r = _item(client, tenant_a, "ev", type="event", properties=props)
        return r.status_code, (r.json().get("error") or {}).get("field")

    past = (now - timedelta(minutes=1)).isoformat()
    soon = (now + timedelta(days=1)).isoformat()
    assert put(starts_at=past) == (422, "properties.starts_at")
    assert put() == (422, "properties.starts_at")
    assert put(starts_at="tomorrow") == (422, "properties.starts_at")
    assert put(starts_at=soon, ends_at=soon) == (422, "properties.ends_at")
    assert put(starts_at=soon, time_zone="Mars/Olympus") == (422, "properties.time_zone")
    assert put(starts_at=soon, capacity=0) == (422, "properties.capacity")
    assert client.get("/v1/items/ev", headers=tenant_a.headers("serve")).status_code == 404
    assert put(starts_at=soon, capacity=5) == (200, None)
    assert put(starts_at=soon, capacity=5) == (200, None)  # a retry
    r = client.patch("/v1/items/ev", json={"properties": {"starts_at": past}},
                     headers=tenant_a.headers())
    assert r.status_code == 422 and r.json()["error"]["field"] == "properties.starts_at"
    r = _item(client, tenant_a, "pr", type="project", properties={"roles_open": -1})
    assert r.status_code == 422 and r.json()["error"]["field"] == "properties.roles_open"
    # a bad record in a batch loses nothing of the good ones
    r = client.post("/v1/items:bulk", headers=tenant_a.headers(), json={"items": [
        {"item_id": "b1", "type": "event", "properties": {"starts_at": soon}},
        {"item_id": "b2", "type": "event", "properties": {"starts_at": past}},
        {"item_id": "b3", "type": "group", "tags": ["x"]},
    ]})
    assert r.status_code in (200, 207), r.text
    body = r.json()
    assert sorted(body["ids"]) == ["b1", "b3"]
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [(1, "properties.starts_at")]


def test_feed_bad_input_consent_and_erasure(client: TestClient, tenant_a: TenantKeys,
                                            clock: list[datetime]) -> None:
    _world(client, tenant_a, clock[0])
    serve = tenant_a.headers("serve")
    for bad in ("people", "people:x", "planets:1", "people:-1", "people:0", "people:nan"):
        r = client.get(f"/v1/users/me/feed?shares={bad}", headers=serve)
        assert r.status_code == 422 and r.json()["error"]["field"] == "shares", bad
    assert client.get("/v1/users/me/feed?n=0", headers=serve).status_code == 422
    # an unknown person: popular people (cold start), nothing claimed to be about them
    unknown = _feed(client, tenant_a, "nobody")
    assert {e["section"] for e in unknown["entries"]} <= {"people"}
    # the friend's posts and RSVPs leave with them
    assert client.delete("/v1/users/friend", headers=tenant_a.headers()).status_code == 200
    after = _feed(client, tenant_a, "me")["entries"]
    assert "post_friend" not in [e["id"] for e in after]
    assert all(r["kind"] != "contacts" for e in after for r in e["reasons"])
    assert client.get("/v1/users/friend/feed", headers=serve).status_code == 410
    r = client.post("/v1/users/me/consents/personalization:deny", json={},
                    headers=tenant_a.headers())
    assert r.status_code in (200, 201), r.text
    denied = _feed(client, tenant_a, "me")
    assert denied["entries"] == [] and "consent" in denied["note"]


def test_item_writes_show_in_the_feed_at_once(client: TestClient, tenant_a: TenantKeys,
                                              app: FastAPI, clock: list[datetime]) -> None:
    """The feed's copy of the catalogue is dropped on every write through this process: with a
    copy lifetime of an hour, a new, changed, bulk-loaded or deleted item shows at the next
    request."""
    now = clock[0]
    _world(client, tenant_a, now)
    app.state.runtime.feed.pool_ttl_s = 3600.0
    before = [e["id"] for e in _feed(client, tenant_a, "me")["entries"]]
    assert "ev_new" not in before
    props = {"time_zone": "Europe/Berlin", "starts_at": _berlin(now, 2, 17), "capacity": 5}
    r = _item(client, tenant_a, "ev_new", type="event", title="New", tags=["qiskit"],
              properties=props)
    assert r.status_code == 200, r.text
    assert "ev_new" in [e["id"] for e in _feed(client, tenant_a, "me")["entries"]]
    # a change (the event fills up) leaves it at once
    r = client.patch("/v1/items/ev_new", json={"properties": {**props, "registered": 5}},
                     headers=tenant_a.headers())
    assert r.status_code == 200, r.text
    assert "ev_new" not in [e["id"] for e in _feed(client, tenant_a, "me")["entries"]]
    # a bulk load of another type (a post), then a delete
    r = client.post("/v1/items:bulk", headers=tenant_a.headers(), json={"items": [
        {"item_id": "post_new", "type": "post", "tags": ["qec"], "author_id": "writer",
         "created_at": now.isoformat()}]})
    assert r.status_code in (200, 207), r.text
    assert "post_new" in [e["id"] for e in _feed(client, tenant_a, "me")["entries"]]
    assert client.delete("/v1/items/post_new", headers=tenant_a.headers()).status_code in (
        200, 204)
    assert "post_new" not in [e["id"] for e in _feed(client, tenant_a, "me")["entries"]]


def test_events_ranked_by_distance_and_time_zone_convenience(
    client: TestClient, tenant_a: TenantKeys, clock: list[datetime]
) -> None:
    """Alike events (same topic, day and contacts) differ only in where and when: the nearer
    venue ranks first (the person's coordinates vs the event's), an online event at a
    convenient hour of the person's zone above the same one at night there; coordinates are
    checked on write, naming the field."""
    now = clock[0]
    r = client.put("/v1/users/me", headers=tenant_a.headers(), json={
        "profile": {"skills": ["qiskit"], "time_zone": "Europe/Berlin", "city": "Berlin"},
        "properties": {"latitude": 52.52, "longitude": 13.405}})
    assert r.status_code in (200, 201), r.text
    day = (now + timedelta(days=3)).date().isoformat()
    base = {"time_zone": "Europe/Berlin", "starts_at": f"{day}T18:00:00"}
    events = {
        "ev_berlin": {**base, "latitude": 52.50, "longitude": 13.42, "city": "Berlin"},
        "ev_potsdam": {**base, "latitude": 52.39, "longitude": 13.06, "city": "Potsdam"},
        "ev_munich": {**base, "latitude": 48.14, "longitude": 11.58, "city": "Munich"},
        "ev_online_evening": {**base, "online": True},
        "ev_online_late": {**base, "online": True, "starts_at": f"{day}T21:30:00"},
        # 18:00 in Los Angeles is 03:00 in Berlin
        "ev_online_night": {"time_zone": "America/Los_Angeles", "online": True,
                            "starts_at": f"{(now + timedelta(days=2)).date().isoformat()}T18:00"},
    }
    for iid, props in events.items():
        r = _item(client, tenant_a, iid, type="event", title=iid, tags=["qiskit"],
                  properties=props)
        assert r.status_code == 200, r.text
    entries = _feed(client, tenant_a, "me", "n=10&shares=events:1")["entries"]
    order = [e["id"] for e in entries]
    assert set(order) == set(events)
    assert order.index("ev_berlin") < order.index("ev_potsdam") < order.index("ev_munich")
    assert (order.index("ev_online_evening") < order.index("ev_online_late")
            < order.index("ev_online_night"))
    by_id = {e["id"]: e for e in entries}
    place = [r["text"] for r in by_id["ev_potsdam"]["reasons"] if r["kind"] == "place"]
    assert place and "km from you" in place[0]
    assert by_id["ev_munich"]["score"] < 0.2 * by_id["ev_berlin"]["score"]  # ~500 km away
    assert by_id["ev_online_night"]["local_start"].startswith(
        f"{(now + timedelta(days=3)).date().isoformat()}T03:00")
    # coordinates come as a valid pair
    for props, field in (({"latitude": 52.5}, "properties.longitude"),
                         ({"longitude": 13.4}, "properties.latitude"),
                         ({"latitude": 91, "longitude": 13.4}, "properties.latitude"),
                         ({"latitude": 52.5, "longitude": "east"}, "properties.longitude")):
        r = _item(client, tenant_a, "ev_bad", type="event", properties={**base, **props})
        assert r.status_code == 422 and r.json()["error"]["field"] == field, (props, r.text)
