"""The experiments, assignments / exposures, decisions and KPI routes over ``memory://``:
scopes, tenant isolation, a correct report from ingested events, and bandit learning from
reward events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.domain.errors import NotFound
from personify.domain.events import Event
from personify.experiments.bandits import DecisionLog
from personify.runtime.decision_points import DecisionPointConfig, DecisionPoints
from personify.runtime.experiments import open_experiments
from personify.storage.registry import Stores
from personify.storage.sql.experiments import SqlDecisionLogStore, SqlDecisionPointStore

if TYPE_CHECKING:
    from conftest import TenantKeys

MakeEvent = Callable[..., dict[str, Any]]

DEFINITION: dict[str, Any] = {
    "name": "reco-vs-pop",
    "hypothesis": "personalized blocks raise CTR",
    "variants": [
        {"name": "control", "payload": {"personalized": False}},
        {"name": "reco", "payload": {"sources": ["collaborative", "popular"]}},
    ],
    "layer": "home",
    "primary_metric": {"name": "ctr", "kind": "ratio"},
    "guardrail_metrics": [{"name": "conversion"}],
    "planned_sample_size": 40,
}


@pytest.fixture
def installed(app: FastAPI) -> FastAPI:
    return app


def _running(client: TestClient, keys: TenantKeys, **changes: Any) -> dict[str, Any]:
    body = {**DEFINITION, **changes}
    created = client.post("/v1/experiments", json=body, headers=keys.headers())
    assert created.status_code == 201, created.text
    started = client.post(f"/v1/experiments/{body['name']}/start", headers=keys.headers())
    assert started.status_code == 200, started.text
    return dict(started.json())


def test_lifecycle_and_listing(
    installed: FastAPI, client: TestClient, tenant_a: TenantKeys
) -> None:
    admin = tenant_a.headers()
    assert client.post("/v1/experiments", json=DEFINITION, headers=admin).status_code == 201
    again = client.post("/v1/experiments", json=DEFINITION, headers=admin)
    assert again.status_code == 409 and again.json()["error"]["field"] == "name"
    listed = client.get("/v1/experiments", headers=admin).json()["experiments"]
    assert [e["name"] for e in listed] == ["reco-vs-pop"] and listed[0]["status"] == "draft"
    started = client.post("/v1/experiments/reco-vs-pop/start", headers=admin).json()
    assert started["status"] == "running" and started["bucket_range"] == [0, 10000]
    assert client.post("/v1/experiments/reco-vs-pop/start", headers=admin).status_code == 409
    running = client.get("/v1/experiments", params={"status": "running"}, headers=admin).json()
    assert len(running["experiments"]) == 1
    one = client.get("/v1/experiments/reco-vs-pop", headers=admin).json()
    assert one["experiment"]["start_at"] is not None and one["exposed_units"] == {}
    stopped = client.post("/v1/experiments/reco-vs-pop/stop", headers=admin).json()
    assert stopped["status"] == "stopped" and stopped["stop_at"] is not None


def test_invalid_definitions_name_the_field(client: TestClient, tenant_a: TenantKeys) -> None:
    admin = tenant_a.headers()
    bad = client.post("/v1/experiments", json={**DEFINITION, "traffic": 2}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "traffic"
    no_horizon = {k: v for k, v in DEFINITION.items() if k != "planned_sample_size"}
    missing = client.post("/v1/experiments", json=no_horizon, headers=admin)
    assert missing.status_code == 422
    assert missing.json()["error"]["field"] == "planned_sample_size"
    running = {**DEFINITION, "status": "running"}
    managed = client.post("/v1/experiments", json=running, headers=admin)
    assert managed.status_code == 422 and managed.json()["error"]["field"] == "status"
    unknown = client.get("/v1/experiments/nope", headers=admin)
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("post", "/v1/experiments", "serve"),
        ("get", "/v1/experiments", "serve"),
        ("post", "/v1/experiments/reco-vs-pop/start", "ingest"),
        ("get", "/v1/experiments/reco-vs-pop/report", "serve"),
        ("get", "/v1/assignments?anonymous_id=v1", "ingest"),
        ("post", "/v1/exposures", "ingest"),
        ("post", "/v1/decisions", "ingest"),
        ("post", "/v1/decisions/offers", "serve"),
        ("get", "/v1/kpis", "serve"),
    ],
)
def test_wrong_scopes_are_rejected(
    client: TestClient, tenant_a: TenantKeys, method: str, path: str, scope: str
) -> None:
    body = {"experiment": "x", "anonymous_id": "v"} if path == "/v1/exposures" else {}
    response = client.request(method, path, headers=tenant_a.headers(scope), json=body)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["field"] == "scope"
    assert client.request(method, path, json=body).status_code == 401


def test_assignment_is_sticky_across_login(client: TestClient, tenant_a: TenantKeys) -> None:
    _running(client, tenant_a)
    serve = tenant_a.headers("serve")
    anon = client.get("/v1/assignments", params={"anonymous_id": "phone"}, headers=serve).json()
    login = client.get(
        "/v1/assignments", params={"anonymous_id": "phone", "user_id": "u1"}, headers=serve
    ).json()
    laptop = client.get("/v1/assignments", params={"user_id": "u1"}, headers=serve).json()
    assert anon["unit"] == login["unit"] == laptop["unit"] == "anon:phone"
    (a,) = anon["assignments"]
    assert a["experiment"] == "reco-vs-pop" and a["layer"] == "home"
    assert laptop["assignments"] == anon["assignments"]
    variant = a["variant"]
    expected = next(v["payload"] for v in DEFINITION["variants"] if v["name"] == variant)
    assert a["payload"] == expected


def test_targeting_uses_the_profile_country(client: TestClient, tenant_a: TenantKeys) -> None:
    _running(client, tenant_a, targeting={"countries": ["DE"]})
    admin, serve = tenant_a.headers(), tenant_a.headers("serve")
    client.put("/v1/users/de-user", json={"profile": {"country": "DE"}}, headers=admin)
    client.put("/v1/users/fr-user", json={"profile": {"country": "FR"}}, headers=admin)
    de = client.get("/v1/assignments", params={"user_id": "de-user"}, headers=serve).json()
    fr = client.get("/v1/assignments", params={"user_id": "fr-user"}, headers=serve).json()
    given = client.get(
        "/v1/assignments", params={"user_id": "fr-user", "country": "de"}, headers=serve
    ).json()
    assert len(de["assignments"]) == 1 and fr["assignments"] == []
    assert len(given["assignments"]) == 1


def test_exposure_is_checked_against_the_assignment(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    _running(client, tenant_a)
    serve = tenant_a.headers("serve")
    got = client.get("/v1/assignments", params={"anonymous_id": "v7"}, headers=serve).json()
    variant = got["assignments"][0]["variant"]
    other = "reco" if variant == "control" else "control"
    body = {"experiment": "reco-vs-pop", "anonymous_id": "v7"}
    wrong = client.post("/v1/exposures", json={**body, "variant": other}, headers=serve)
    assert wrong.status_code == 409 and wrong.json()["error"]["accepted"] == variant
    first = client.post("/v1/exposures", json={**body, "variant": variant}, headers=serve).json()
    second = client.post("/v1/exposures", json=body, headers=serve).json()
    assert first["logged"] is True and second["logged"] is False
    one = client.get("/v1/experiments/reco-vs-pop", headers=tenant_a.headers()).json()
    assert one["exposed_units"] == {variant: 1}
    missing = client.post("/v1/exposures", json={**body, "experiment": "nope"}, headers=serve)
    assert missing.status_code == 404


def test_report_analyzes_exposed_units_from_ingested_events(
    client: TestClient, tenant_a: TenantKeys, make_event: MakeEvent
) -> None:
    _running(client, tenant_a)
    serve, admin = tenant_a.headers("serve"), tenant_a.headers()
    exposed_at = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    shown_at = datetime.now(UTC) - timedelta(hours=1)
    events: list[dict[str, Any]] = []
    variants: dict[str, int] = {}
    for i in range(160):
        anon = f"visitor-{i}"
        got = client.get("/v1/assignments", params={"anonymous_id": anon}, headers=serve).json()
        variant = got["assignments"][0]["variant"]
        if i % 4 == 3:
            continue  # assigned but never served: must not be analyzed
        variants[variant] = variants.get(variant, 0) + 1
        exposure = {"experiment": "reco-vs-pop", "anonymous_id": anon, "timestamp": exposed_at}
        assert client.post("/v1/exposures", json=exposure, headers=serve).json()["logged"]
        rec = f"rec-{i}"
        ts = (shown_at + timedelta(seconds=i)).isoformat()
        events.append(make_event(type="impression", user_id=None, anonymous_id=anon,
                                 item_id=None, item_ids=["i1"], recommendation_id=rec,
                                 timestamp=ts))
        if variant == "reco" or i % 5 == 0:
            events.append(make_event(type="click", user_id=None, anonymous_id=anon,
                                     item_id="i1", recommendation_id=rec, timestamp=ts))
    ingested = client.post("/v1/events/batch", json=events, headers=tenant_a.headers("ingest"))
    assert ingested.status_code == 200, ingested.text
    report = client.get("/v1/experiments/reco-vs-pop/report", headers=admin)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["units"] == variants and sum(variants.values()) == 120
    assert body["final"] is True and body["sample_ratio"]["ok"] is True
    ctr = next(c for c in body["comparisons"] if c["metric"] == "ctr")
    assert ctr["variant"] == "reco" and ctr["variant_value"] == 1.0
    assert 0.05 < ctr["control_value"] < 0.5 and ctr["lift"] > 1
    assert ctr["significant"] is True and ctr["lift_ci"][0] > 0
    assert "reco" in body["verdict"] and "ctr" in body["verdict"]
    assert body["events_read"] == len(events)


def test_report_of_a_draft_is_a_conflict(client: TestClient, tenant_a: TenantKeys) -> None:
    client.post("/v1/experiments", json=DEFINITION, headers=tenant_a.headers())
    got = client.get("/v1/experiments/reco-vs-pop/report", headers=tenant_a.headers())
    assert got.status_code == 409


def test_tenants_are_isolated(
    client: TestClient, tenant_a: TenantKeys, tenant_b: TenantKeys
) -> None:
    _running(client, tenant_a)
    client.post("/v1/decisions/offers", json={"policy": "linucb"}, headers=tenant_a.headers())
    b_admin, b_serve = tenant_b.headers(), tenant_b.headers("serve")
    assert client.get("/v1/experiments", headers=b_admin).json()["experiments"] == []
    assert client.get("/v1/experiments/reco-vs-pop", headers=b_admin).status_code == 404
    assert client.post("/v1/experiments/reco-vs-pop/stop", headers=b_admin).status_code == 404
    got = client.get("/v1/assignments", params={"anonymous_id": "v1"}, headers=b_serve).json()
    assert got["assignments"] == []
    exposure = {"experiment": "reco-vs-pop", "anonymous_id": "v1"}
    assert client.post("/v1/exposures", json=exposure, headers=b_serve).status_code == 404
    decision = {"point": "offers", "actions": [{"id": "a"}, {"id": "b"}]}
    assert client.post("/v1/decisions", json=decision, headers=b_serve).status_code == 404
    assert client.get("/v1/decisions", headers=b_admin).json()["points"] == []
    # B can use the same names for its own objects without touching A's
    _running(client, tenant_b, hypothesis="B's own")
    a_one = client.get("/v1/experiments/reco-vs-pop", headers=tenant_a.headers()).json()
    assert a_one["experiment"]["hypothesis"] == DEFINITION["hypothesis"]


def _decide(client: TestClient, keys: TenantKeys, **fields: Any) -> dict[str, Any]:
    body = {
        "point": "offers",
        "context": {"device": "mobile", "hour": 9},
        "actions": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
        "k": 3,
        **fields,
    }
    got = client.post("/v1/decisions", json=body, headers=keys.headers("serve"))
    assert got.status_code == 200, got.text
    return dict(got.json())


def test_a_reward_event_updates_the_policy(
    installed: FastAPI,
    client: TestClient,
    tenant_a: TenantKeys,
    stores: Stores,
    make_event: MakeEvent,
) -> None:
    config = {"policy": "linucb", "alpha": 0.0, "epsilon": 0.0, "dim": 16}
    configured = client.post("/v1/decisions/offers", json=config, headers=tenant_a.headers())
    assert configured.status_code == 200 and configured.json()["updates"] == 0
    first = _decide(client, tenant_a)
    assert [a["id"] for a in first["actions"]] == ["a", "b", "c"]  # ties: first action
    assert [a["propensity"] for a in first["actions"]] == [1.0, 1.0, 1.0]
    assert first["decision_id"].startswith("dec-")
    click = make_event(type="click", item_id="b", recommendation_id=first["decision_id"])
    client.post("/v1/events", json=click, headers=tenant_a.headers("ingest"))
    second = _decide(client, tenant_a)
    assert second["actions"][0]["id"] == "b" and second["actions"][0]["score"] > 0
    state = client.get("/v1/decisions/offers", headers=tenant_a.headers()).json()
    assert state["updates"] == 1 and state["actions_learned"] == ["b"]
    # a second click on the same decision and action does not count twice
    again = make_event(type="click", item_id="b", recommendation_id=first["decision_id"])
    client.post("/v1/events", json=again, headers=tenant_a.headers("ingest"))
    assert client.get("/v1/decisions/offers", headers=tenant_a.headers()).json()["updates"] == 1
    # the decisions are logged with their propensities, and the learned state survives a restart
    assert stores.database is not None
    log = SqlDecisionLogStore(stores.database, DecisionLog.from_dict)
    logged = log.get("default", first["decision_id"])
    assert logged is not None and logged.chosen == ["a", "b", "c"]
    assert logged.propensities == [1.0, 1.0, 1.0] and logged.policy == "offers"
    fresh = open_experiments(stores.engine_url, database=stores.database)
    after_restart = fresh.points.decide("default", "offers", {"device": "mobile", "hour": 9},
                                        ["a", "b", "c"], 1)
    assert after_restart.decision.ranked == ["b"]


def test_exploration_propensities_are_logged_and_follow_rewards(
    client: TestClient, tenant_a: TenantKeys, make_event: MakeEvent
) -> None:
    config = {"policy": "linucb", "alpha": 0.0, "epsilon": 0.3, "seed": 3}
    client.post("/v1/decisions/offers", json=config, headers=tenant_a.headers())

    def tops(greedy: str) -> list[dict[str, Any]]:
        out = []
        for _ in range(40):
            got = _decide(client, tenant_a, k=1)
            (top,) = got["actions"]
            expected = 0.3 / 3 + 0.7 if top["id"] == greedy else 0.3 / 3
            assert top["propensity"] == pytest.approx(expected)
            out.append({**top, "decision_id": got["decision_id"]})
        return out

    before = tops("a")  # untrained: ties go to the first action
    assert {t["id"] for t in before} == {"a", "b", "c"}
    shown_c = next(t for t in before if t["id"] == "c")
    click = make_event(type="click", item_id="c", recommendation_id=shown_c["decision_id"])
    client.post("/v1/events", json=click, headers=tenant_a.headers("ingest"))
    after = tops("c")  # the reward made "c" the greedy choice: its propensity rose
    assert sum(t["id"] == "c" for t in after) > sum(t["id"] == "c" for t in before) + 10


def test_thompson_point_and_invalid_decisions(client: TestClient, tenant_a: TenantKeys) -> None:
    admin = tenant_a.headers()
    bad = client.post("/v1/decisions/offers", json={"policy": "ucb2"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "policy"
    client.post("/v1/decisions/offers", json={"policy": "linear_thompson"}, headers=admin)
    got = _decide(client, tenant_a, k=2, actions=[{"id": "x", "features": {"price": 3}},
                                                  {"id": "y"}])
    assert got["policy"] == "linear_thompson" and len(got["actions"]) == 2
    assert all(0 < a["propensity"] <= 1 for a in got["actions"])
    assert got["warnings"]  # action features are not used yet, and say so
    serve = tenant_a.headers("serve")
    too_many = {"point": "offers", "actions": [{"id": "x"}], "k": 2}
    assert client.post("/v1/decisions", json=too_many, headers=serve).status_code == 422
    dup = {"point": "offers", "actions": [{"id": "x"}, {"id": "x"}]}
    assert client.post("/v1/decisions", json=dup, headers=serve).status_code == 422
    nested = {"point": "offers", "actions": [{"id": "x"}], "context": {"a": {"b": 1}}}
    assert client.post("/v1/decisions", json=nested, headers=serve).status_code == 422
    assert client.get("/v1/decisions", headers=admin).json()["points"] == ["offers"]


def test_unrewarded_actions_get_zero_rewards_when_the_window_closes(stores: Stores) -> None:
    assert stores.database is not None
    now = [datetime(2024, 5, 1, tzinfo=UTC)]
    points = DecisionPoints(
        SqlDecisionPointStore(stores.database),
        SqlDecisionLogStore(stores.database, DecisionLog.from_dict),
        clock=lambda: now[0],
    )
    points.configure("t", "p", DecisionPointConfig(alpha=0.0, epsilon=0.0,
                                                   reward_window_seconds=60))
    ctx = {"device": "web"}
    first = points.decide("t", "p", ctx, ["a", "b"], 2)
    assert first.decision.ranked == ["a", "b"]
    click = Event(event_id="c1", type="click", user_id="u", item_id="b",
                  recommendation_id=first.decision.decision_id, timestamp=now[0])
    late = Event(event_id="c2", type="click", user_id="u", item_id="a",
                 recommendation_id=first.decision.decision_id,
                 timestamp=now[0] + timedelta(minutes=5))
    points.on_events("t", [click])
    now[0] += timedelta(minutes=2)
    assert points.close_expired("t", "p") == 1  # "a" earned nothing: one zero update
    points.on_events("t", [late])  # after the window: ignored
    info = points.describe("t", "p")
    assert info["updates"] == 2 and info["open_decisions"] == 0
    assert points.decide("t", "p", ctx, ["a", "b"], 1).decision.ranked == ["b"]
    with pytest.raises(NotFound):
        points.decide("t", "missing", ctx, ["a"], 1)


def test_seen_only_decisions_count_only_the_actions_seen(stores: Stores) -> None:
    """A page's rows below the fold: of a ``seen_only`` decision, only the actions reported
    seen (or clicked) earn a zero when the window closes; an unseen action neither earns nor
    loses. A mark reaching another process opens the decision from the log there, and each
    zero is counted once."""
    assert stores.database is not None
    now = [datetime(2024, 5, 1, tzinfo=UTC)]
    log = SqlDecisionLogStore(stores.database, DecisionLog.from_dict)
    points = DecisionPoints(SqlDecisionPointStore(stores.database), log, clock=lambda: now[0])
    other = DecisionPoints(SqlDecisionPointStore(stores.database), log, clock=lambda: now[0])
    points.configure("t", "p", DecisionPointConfig(alpha=0.0, epsilon=0.0,
                                                   reward_window_seconds=60))
    ctx = {"device": "web"}
    made = points.decide("t", "p", ctx, ["a", "b", "c", "d"], 4, seen_only=True)
    decision_id = made.decision.decision_id
    assert made.log.seen_only and log.get("t", decision_id) == made.log
    click = Event(event_id="c1", type="click", user_id="u", item_id="b",
                  recommendation_id=decision_id, timestamp=now[0])
    points.on_events("t", [click])  # clicked: seen, rewarded 1
    assert points.mark_seen("t", [(decision_id, "a", now[0])]) == 1
    assert points.mark_seen("t", [(decision_id, "a", now[0])]) == 0  # once
    # not chosen, unknown decision, after the window: ignored
    assert points.mark_seen("t", [(decision_id, "zzz", now[0]), ("dec-unknown", "a", now[0]),
                                  (decision_id, "c", now[0] + timedelta(minutes=5))]) == 0
    # "d" was seen in another process (the one the impression reached)
    assert other.mark_seen("t", [(decision_id, "d", now[0])]) == 1
    now[0] += timedelta(minutes=2)
    assert points.close_expired("t", "p") == 1  # "a": seen, not clicked; "c" never seen
    assert other.close_expired("t", "p") == 1  # "d"
    assert points.close_expired("t", "p") == 0 and other.close_expired("t", "p") == 0
    for process in (points, other):
        info = process.describe("t", "p")
        assert info["updates"] == 3, info
        assert info["actions_learned"] == ["a", "b", "d"], info  # "c" neither won nor lost
    # an ordinary decision still counts every chosen action
    plain = points.decide("t", "p", ctx, ["a", "c"], 2)
    assert not plain.log.seen_only
    now[0] += timedelta(minutes=2)
    assert points.close_expired("t", "p") == 2


def test_kpis_per_channel_variant_and_window_limits(
    client: TestClient, tenant_a: TenantKeys, make_event: MakeEvent
) -> None:
    _running(client, tenant_a)
    serve, admin = tenant_a.headers("serve"), tenant_a.headers()
    ts = datetime.now(UTC) - timedelta(hours=1)
    events = []
    for i, channel in enumerate(["web", "web", "app"]):
        anon = f"k{i}"
        client.post("/v1/exposures", json={"experiment": "reco-vs-pop", "anonymous_id": anon,
                                           "timestamp": (ts - timedelta(hours=1)).isoformat()},
                    headers=serve)
        at = (ts + timedelta(minutes=i)).isoformat()
        ctx = {"channel": channel}
        events += [
            make_event(type="impression", user_id=None, anonymous_id=anon, item_id=None,
                       item_ids=["i1"], recommendation_id=f"r{i}", timestamp=at, context=ctx),
            make_event(type="click", user_id=None, anonymous_id=anon, item_id="i1",
                       recommendation_id=f"r{i}", timestamp=at, context=ctx),
            make_event(type="purchase", user_id=None, anonymous_id=anon, item_id="i1",
                       price=10.0 * (i + 1), quantity=1, timestamp=at, context=ctx),
        ]
    client.post("/v1/events/batch", json=events, headers=tenant_a.headers("ingest"))
    by_channel = client.get("/v1/kpis", params={"group_by": "channel"}, headers=admin).json()
    assert by_channel["events"] == 9 and by_channel["truncated"] is False
    assert by_channel["total"]["revenue"] == pytest.approx(60.0)
    assert by_channel["total"]["ctr"] == 1.0
    assert by_channel["groups"]["web"]["units"] == 2 and by_channel["groups"]["app"]["units"] == 1
    assert by_channel["groups"]["app"]["revenue"] == pytest.approx(30.0)
    by_variant = client.get(
        "/v1/kpis", params={"group_by": "variant", "experiment": "reco-vs-pop"}, headers=admin
    ).json()
    assert sum(g["units"] for g in by_variant["groups"].values()) == 3
    assert {r["variant"] for r in by_variant["revenue_lift"]} <= {"control", "reco"}
    assert sum(r["units"] for r in by_variant["revenue_lift"]) == 3
    no_exp = client.get("/v1/kpis", params={"group_by": "variant"}, headers=admin)
    assert no_exp.status_code == 422 and no_exp.json()["error"]["field"] == "experiment"
    too_long = client.get(
        "/v1/kpis", params={"since": "2020-01-01T00:00:00Z"}, headers=admin
    )
    assert too_long.status_code == 422 and too_long.json()["error"]["field"] == "since"
    empty = client.get(
        "/v1/kpis",
        params={"since": "2021-01-01T00:00:00Z", "until": "2021-01-02T00:00:00Z"},
        headers=admin,
    ).json()
    assert empty["events"] == 0 and empty["total"]["units"] == 0


def test_the_impression_that_caused_the_exposure_counts_in_ctr(
    client: TestClient, tenant_a: TenantKeys, stores: Stores, make_event: MakeEvent
) -> None:
    """One recommendation request per unit: its impression is stamped before the exposure record
    (the serving chain logs it first), yet it is the impression that exposed the unit, so it and
    its click count; the report's CTR is not n/a."""
    from personify.domain.items import Item

    stores.catalog.upsert("default", [Item(item_id=f"i{n}", title=f"item {n}") for n in range(9)])
    _running(client, tenant_a)
    serve = tenant_a.headers("serve")
    clicks: list[dict[str, Any]] = []
    for i in range(40):
        got = client.get(
            "/v1/recommendations", params={"anonymous_id": f"one-{i}", "n": 3}, headers=serve
        )
        assert got.status_code == 200, got.text
        body = got.json()
        if i % 2 == 0:
            clicks.append(make_event(
                type="click", user_id=None, anonymous_id=f"one-{i}",
                item_id=body["items"][0]["item_id"], recommendation_id=body["recommendation_id"],
                timestamp=datetime.now(UTC).isoformat(),
            ))
    logged = open_experiments(stores.engine_url, database=stores.database).exposures
    exposures = {x.unit: x for x in logged.exposures("default", "reco-vs-pop")}
    assert exposures, "serving under the experiment logs exposures"
    client.post("/v1/events/batch", json=clicks, headers=tenant_a.headers("ingest"))
    report = client.get("/v1/experiments/reco-vs-pop/report", headers=tenant_a.headers())
    assert report.status_code == 200, report.text
    ctr = next(c for c in report.json()["comparisons"] if c["metric"] == "ctr")
    units = sum(report.json()["units"].values())
    assert ctr["control_value"] is not None and ctr["variant_value"] is not None
    # every exposed unit has exactly its one impression counted; half of the units clicked it
    assert units == len(exposures)
    assert 0.2 < (ctr["control_value"] + ctr["variant_value"]) / 2 < 0.8


def test_a_reward_without_the_action_id_is_reported(
    installed: FastAPI, client: TestClient, tenant_a: TenantKeys, make_event: MakeEvent
) -> None:
    config = {"policy": "linucb", "alpha": 0.0, "epsilon": 0.0, "dim": 16,
              "reward_types": {"conversion": 1.0}}
    assert client.post("/v1/decisions/offers", json=config,
                       headers=tenant_a.headers()).status_code == 200
    decision = _decide(client, tenant_a)
    ingest = tenant_a.headers("ingest")
    blind = make_event(type="conversion", item_id=None, recommendation_id=decision["decision_id"])
    got = client.post("/v1/events", json=blind, headers=ingest)
    assert got.status_code == 200, got.text
    assert any("without the chosen action's id in item_id" in n for n in got.json()["notes"])
    batch = client.post("/v1/events/batch", json=[
        make_event(type="conversion", item_id=None, recommendation_id=decision["decision_id"]),
        make_event(type="conversion", item_id="a", recommendation_id=decision["decision_id"]),
    ], headers=ingest).json()
    assert [(w["index"], w["field"]) for w in batch["warnings"]] == [(0, "item_id")]
    assert client.get("/v1/decisions/offers", headers=tenant_a.headers()).json()["updates"] == 1
