"""A messaging worker (``personify worker messages``, a separate process) whose PostgreSQL
backends are terminated mid-run (``pg_terminate_backend``) reconnects and finishes: every message
is delivered once and marked sent (none left in flight to be resent later as in doubt)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from personify.domain.consents import ConsentRecord, ConsentState
from personify.storage.registry import open_stores
from personify.testing.clocks import daytime_zone, real_now
from personify.testing.cluster import Cluster
from personify.testing.webhook_sink import WebhookSink

# real_clock: out of the any-hour reruns, which cannot move the worker's clock (its quiet hours
# read the real one; daytime_zone keeps the people outside them at any real hour). Everything it
# is handed is dated by the worker's clock, so it passes with the suite clock moved too.
pytestmark = [
    pytest.mark.real_clock, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600),
]

ADMIN = "reconnect-admin-key-0123456789abcdef"
TRACKING = "reconnect-tracking-secret-0123456789"
MESSAGES = 30


@pytest.fixture
def hook() -> Iterator[WebhookSink]:
    with WebhookSink(delay=0.1) as sink:  # a send takes a moment: the kill lands mid-run
        yield sink


def _enqueue(postgres_url: str, hook: str, tmp_path: Path) -> None:
    import warnings

    from personify.api import create_app
    from personify.settings import Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    settings = Settings(database_url=postgres_url, admin_key=ADMIN, tracking_secret=TRACKING,
                        model_dir=str(tmp_path / "models"), webhook_allow_http=True,
                        webhook_allow_hosts=["127.0.0.1"])
    h = {"Authorization": f"Bearer {ADMIN}"}
    # the real clock, like the worker it hands the outbox to (a moved suite clock would date
    # the messages hours away from it)
    with TestClient(create_app(settings, clock=real_now)) as client:
        for u in range(MESSAGES):
            # the worker is a child process on the real clock (a moved suite clock does not
            # reach it): the people live where it is midday now, outside quiet hours
            profile = {"profile": {"time_zone": daytime_zone()}}
            assert client.put(f"/v1/users/p{u}", json=profile, headers=h).status_code == 200
        # consents dated by the worker's clock: the store dates a record by this process's
        # wall clock, which a moved suite clock (PERSONIFY_TEST_WALL_CLOCK=23:00) puts hours
        # ahead of the worker's, whose consent check would then find no grant yet
        with open_stores(postgres_url) as stores:
            for u in range(MESSAGES):
                stores.consents.append("default", ConsentRecord(
                    user_id=f"p{u}", purpose="push_marketing", state=ConsentState.GRANTED,
                    recorded_at=real_now() - timedelta(seconds=1)))
        assert client.put("/v1/messaging/channels/push", headers=h,
                          json={"url": hook, "secret": "s" * 32}).status_code == 200
        template = {"channel": "push", "recommendations": 0,
                    "variants": [{"subject": "Hi", "text": "News"}]}
        assert client.put("/v1/messaging/templates/news", json=template,
                          headers=h).status_code == 200
        sent = client.post("/v1/messaging/campaigns", headers=h, json={
            "name": "news", "template": "news", "channel": "push",
            "send_at": (real_now() - timedelta(minutes=1)).isoformat()})
        assert sent.status_code == 200 and sent.json()["enqueued"] == MESSAGES, sent.text


def test_worker_survives_terminated_backends_without_resending(
    postgres_url: str, tmp_path: Path, hook: WebhookSink
) -> None:
    _enqueue(postgres_url, hook.url, tmp_path)
    app_name = f"pfy-worker-{uuid.uuid4().hex[:8]}"
    env = {"PERSONIFY_DATABASE_URL": f"{postgres_url}&application_name={app_name}",
           "PERSONIFY_TRACKING_SECRET": TRACKING, "PERSONIFY_MODEL_DIR": str(tmp_path / "models"),
           "PERSONIFY_WEBHOOK_ALLOW_HTTP": "true",
           "PERSONIFY_WEBHOOK_ALLOW_HOSTS": '["127.0.0.1"]'}
    admin_db = sa.create_engine(postgres_url)
    terminated = 0
    with Cluster(env, tmp_path) as cluster:
        worker = cluster.worker("worker", "messages", "--poll", "0.2")
        deadline = time.monotonic() + 240
        while not hook.received:
            assert worker.alive(), cluster.tail(worker)
            assert time.monotonic() < deadline, "the worker sent nothing"
            time.sleep(0.02)
        # every 0.2 s for 2 s while it sends: some kills land inside a claim, a "send started"
        # or a mark (a mark lost after its send would leave the message in flight, to be resent
        # as in doubt once its 60 s lease ends: the deadline outlasts the lease)
        for _ in range(10):
            with admin_db.begin() as conn:
                terminated += int(conn.execute(sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name"), {"name": app_name}).scalar() or 0)
            time.sleep(0.2)
        while len(hook.received) < MESSAGES and time.monotonic() < deadline:
            time.sleep(0.1)
        statuses: Counter[str] = Counter()
        while time.monotonic() < deadline:
            with admin_db.connect() as conn:
                statuses = Counter(str(s) for (s,) in conn.execute(
                    sa.text("SELECT status FROM personify_msg_outbox")))
            if statuses.get("sent") == MESSAGES:
                break
            time.sleep(0.2)
        assert worker.alive(), cluster.tail(worker)
        log = cluster.tail(worker, 20000)
    admin_db.dispose()
    assert terminated >= 3, "the worker's connections were not found to terminate"
    per_message = Counter(p["message_id"] for p in hook.payloads())
    assert len(per_message) == MESSAGES, (len(per_message), log[-2000:])
    assert max(per_message.values()) == 1, "a message was sent twice"
    assert statuses == Counter({"sent": MESSAGES}), (statuses, log[-2000:])
