"""Two API servers and two messaging workers as separate processes on one PostgreSQL + Redis +
model directory (docs/deployment.md): a click through server A changes server B's next answer,
server A is killed with SIGKILL mid-load while the client retries on B and no acknowledged event
is lost or stored twice, a campaign's messages are each sent exactly once by the two workers, and
a newly promoted model is served by every server within ``model_refresh_seconds``.

The processes start first and boot while this process seeds the shared stores and promotes the
first model (the servers pick it up as any later promotion, which the test checks too): their
start-up overlaps the seeding instead of following it."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from personify.testing.clocks import daytime_zone, real_now
from personify.testing.cluster import Cluster
from personify.testing.webhook_sink import WebhookSink

pytestmark = [
    pytest.mark.real_clock, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow,
    pytest.mark.timeout(900),
]

ADMIN = "multinode-admin-key-0123456789abcdef"
TRACKING = "multinode-tracking-secret-0123456789"
HOOK_SECRET = "multinode-webhook-secret-0123456789"
H = {"Authorization": f"Bearer {ADMIN}"}
REFRESH_S = 0.5


@pytest.fixture
def hook() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink


def _seed(postgres_url: str, model_dir: Path) -> str:
    """Catalogue, people with consents and a history, and a first promoted model."""
    from personify.jobs.training import TrainingConfig, train_tenant
    from personify.runtime.container import build_runtime
    from personify.settings import Settings

    settings = Settings(database_url=postgres_url, model_dir=str(model_dir), admin_key=ADMIN)
    runtime = build_runtime(settings)
    try:
        s = runtime.stores
        from personify.domain.consents import ConsentRecord, ConsentState
        from personify.domain.items import Item
        from personify.domain.users import User

        s.catalog.upsert("default", [Item(item_id=f"i{k}", title=f"Item {k}") for k in range(40)])
        # the servers and workers are child processes on the real clock (a moved suite clock does
        # not reach them): the people live where it is midday now, outside quiet hours
        zone = daytime_zone()
        s.users.upsert("default", [User(user_id=f"u{u}", profile={"time_zone": zone})
                                   for u in range(30)])
        # dated by the children's clock, not this process's (a moved suite clock would date
        # them in the servers' and workers' future: no grant yet)
        granted = real_now() - timedelta(seconds=1)
        for u in range(30):
            for purpose in ("personalization", "profiling", "push_marketing"):
                s.consents.append("default", ConsentRecord(
                    user_id=f"u{u}", purpose=purpose, state=ConsentState.GRANTED,
                    recorded_at=granted))
        events = [
            {"event_id": f"seed-{u}-{j}", "type": "purchase", "user_id": f"u{u}",
             "item_id": f"i{(u % 5) * 8 + (j * 3 + u) % 8}",
             "timestamp": (real_now() - timedelta(days=2, minutes=u * 10 + j)).isoformat()}
            for u in range(30) for j in range(6)
        ]
        assert not runtime.ingestor.ingest("default", events).rejected
        manifest = train_tenant(s.events, runtime.engine.models, "default",
                                TrainingConfig(learn_blend=False), catalog=s.catalog,
                                users=s.users)
        return manifest.version
    finally:
        runtime.close()


def _await_model(http: httpx.Client, url: str, version: str, *, since: float) -> None:
    """Until the server at ``url`` serves ``version``, promoted at ``since`` (monotonic): within
    ``model_refresh_seconds`` plus its load."""
    while http.get(f"{url}/ready").json()["checks"]["model"] != f"serving {version}":
        assert time.monotonic() - since < REFRESH_S + 15, f"{url} never served {version}"
        time.sleep(0.05)


def test_two_servers_two_workers_share_everything(
    postgres_url: str, redis_url: str, redis_prefix: str, tmp_path: Path, hook: WebhookSink
) -> None:
    model_dir = tmp_path / "models"
    env = {
        "PERSONIFY_DATABASE_URL": postgres_url, "PERSONIFY_REDIS_URL": redis_url,
        "PERSONIFY_REDIS_PREFIX": redis_prefix, "PERSONIFY_MODEL_DIR": str(model_dir),
        "PERSONIFY_ADMIN_KEY": ADMIN, "PERSONIFY_TRACKING_SECRET": TRACKING,
        "PERSONIFY_MODEL_REFRESH_SECONDS": str(REFRESH_S), "PERSONIFY_LOG_FORMAT": "json",
        "PERSONIFY_WEBHOOK_ALLOW_HTTP": "true", "PERSONIFY_WEBHOOK_ALLOW_HOSTS": '["127.0.0.1"]',
        "PERSONIFY_RATE_LIMIT_PER_MINUTE": "0", "PERSONIFY_RATE_LIMIT_TENANT_PER_MINUTE": "0",
    }
    with Cluster(env, tmp_path) as cluster:
        a, b = cluster.server("server-a"), cluster.server("server-b")
        workers = [cluster.worker(f"worker-{k}", "messages", "--poll", "0.2") for k in (1, 2)]
        first_version = _seed(postgres_url, model_dir)  # while they boot (migrations: locked)
        cluster.wait_ready([a, b])
        ready_at = time.monotonic()
        http = httpx.Client(timeout=10.0, headers=H)
        for node in (a, b):  # started before any model: the first promoted one reaches them
            _await_model(http, node.url, first_version, since=ready_at)

        # a click through A changes the next answer from B (shared online state in Redis)
        def answer(node_url: str) -> list[str]:
            r = http.post(f"{node_url}/v1/recommendations", json={"user_id": "u3", "n": 10})
            assert r.status_code == 200, r.text
            return [i["item_id"] for i in r.json()["items"]]

        before = answer(b.url)
        clicked = next(f"i{k}" for k in range(39, -1, -1) if f"i{k}" not in before)
        for j in range(3):
            r = http.post(f"{a.url}/v1/events", json={
                "event_id": f"click-{j}", "type": "purchase", "user_id": "u3",
                "item_id": clicked, "timestamp": real_now().isoformat()})
            assert r.status_code == 200, r.text
        assert answer(b.url) != before, "B's answer did not see the click made through A"

        # load on both servers; A is killed mid-load, the client retries on B
        acknowledged: set[str] = set()
        through_a: list[int] = []  # batches A acknowledged
        ids = itertools.count()

        def load() -> None:
            targets = itertools.cycle([a.url, b.url])
            for n in range(40):
                batch = [{"event_id": f"load-{next(ids)}", "type": "view",
                          "user_id": f"u{k % 30}", "item_id": f"i{k % 40}",
                          "timestamp": real_now().isoformat()} for k in range(10)]
                for target in [next(targets), b.url]:  # the retry goes to B
                    try:
                        r = http.post(f"{target}/v1/events/batch", json={"events": batch})
                        http.post(f"{target}/v1/recommendations", json={"user_id": "u1"})
                    except httpx.HTTPError:
                        continue
                    if r.status_code == 200:
                        acknowledged.update(e["event_id"] for e in batch)
                        if target == a.url:
                            through_a.append(n)
                        break

        loader = threading.Thread(target=load)
        loader.start()
        while len(through_a) < 3 and loader.is_alive():  # A has taken part of the load
            time.sleep(0.01)
        cluster.kill(a)  # SIGKILL mid-load: no shutdown, no flush
        loader.join(timeout=120)
        assert not loader.is_alive()
        assert len(through_a) >= 3 and len(acknowledged) >= 350, (len(through_a),
                                                                  len(acknowledged))

        # a campaign through B, sent by the two workers, each message exactly once
        assert http.put(f"{b.url}/v1/messaging/channels/push",
                        json={"url": hook.url, "secret": HOOK_SECRET}).status_code == 200
        template = {"channel": "push", "recommendations": 0,
                    "variants": [{"subject": "Hello {{ user.user_id }}", "text": "News"}]}
        assert http.put(f"{b.url}/v1/messaging/templates/news", json=template).status_code == 200
        campaign = {"name": "news", "template": "news", "channel": "push",
                    "send_at": (real_now() - timedelta(minutes=1)).isoformat()}
        sent = http.post(f"{b.url}/v1/messaging/campaigns", json=campaign)
        assert sent.status_code == 200, sent.text
        enqueued = sent.json()["enqueued"]
        assert enqueued == 30
        deadline = time.monotonic() + 40
        while len(hook.received) < enqueued and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # a duplicate would arrive now
        per_message = Counter(p["message_id"] for p in hook.payloads())
        assert len(per_message) == enqueued, (len(per_message), [cluster.tail(w) for w in workers])
        assert max(per_message.values()) == 1, "a message was sent twice"

        # a promoted model reaches B within model_refresh_seconds (plus its load)
        from personify.jobs.training import TrainingConfig, train_tenant
        from personify.runtime.container import build_runtime
        from personify.settings import Settings

        runtime = build_runtime(Settings(database_url=postgres_url, model_dir=str(model_dir),
                                         admin_key=ADMIN))
        try:
            s = runtime.stores
            manifest = train_tenant(s.events, runtime.engine.models, "default",
                                    TrainingConfig(learn_blend=False), catalog=s.catalog,
                                    users=s.users)
            promoted_at = time.monotonic()
            stored_ids = Counter(
                e.event_id for e in s.events.scan("default", since=real_now() - timedelta(days=30))
            )
        finally:
            runtime.close()
        _await_model(http, b.url, manifest.version, since=promoted_at)

    # every acknowledged event is stored, exactly once
    missing = acknowledged - set(stored_ids)
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert all(stored_ids[i] == 1 for i in acknowledged)
