"""The outbox worker: checks at send time, guardrails, retries, tracking links."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from personify.domain.items import Item
from personify.domain.users import User
from personify.messaging.channels import PermanentSendError, TransientSendError
from personify.messaging.guardrails import FrequencyCap, Guardrails, QuietHours
from personify.messaging.inbox import InboxSender, list_inbox, mark_read
from personify.messaging.outbox import OutboxWorker, RetryPolicy, new_message
from personify.messaging.records import DeliveryStatus
from personify.messaging.templates import MessageTemplate
from personify.messaging.tracking import TrackingSigner

TEMPLATE = MessageTemplate(
    name="news",
    recommendations=2,
    variants=[
        {
            "subject": "Hi {{ user.name }}",
            "html": '{% for r in recommendations %}<a href="{{ r.url }}">{{ r.title }}</a>'
            "{% endfor %}",
            "text": "{{ recommendations|length }} picks",
        }
    ],
)
USERS = {
    "ann": User(
        user_id="ann",
        profile={"name": "Ann", "email": "ann@example.com", "time_zone": "Europe/Berlin"},
    ),
    "bob": User(user_id="bob", profile={"name": "Bob", "email": "bob@example.com"}),
}


def _recommend(tenant: str, user_id: str, n: int) -> list[Item]:
    return [Item(item_id=f"{user_id}-{i}", title=f"Item {i} for {user_id}",
                 properties={"url": f"https://shop.example/{user_id}-{i}"}) for i in range(n)]


@pytest.fixture
def consents() -> set[tuple[str, str]]:
    return {("ann", "email_marketing"), ("bob", "email_marketing")}


@pytest.fixture
def worker(stores, clock, consents, recording_sender):
    sender = recording_sender
    w = OutboxWorker(
        store=stores.outbox,
        templates=lambda tenant, name: TEMPLATE if name == "news" else None,
        users=lambda tenant, user_id: USERS.get(user_id),
        senders={"email": sender},
        consent=lambda tenant, user_id, purpose: (user_id, purpose) in consents,
        suppressions=stores.suppressions,
        recommend=_recommend,
        signer=TrackingSigner(b"s" * 32, "https://t.example"),
        guardrails=Guardrails(caps=FrequencyCap({"email": 2}), quiet_hours=None),
        retry=RetryPolicy(max_attempts=3, base=timedelta(seconds=10), jitter=0.0),
        clock=clock,
        rng=random.Random(1),
    )
    w.sender = sender  # type: ignore[attr-defined]
    return w


def _enqueue(stores, clock, user: str, key: str, **kwargs) -> str:
    message = new_message("t", user, "news", dedup_key=key, now=clock(), **kwargs)
    stores.outbox.enqueue(message)
    return message.message_id


def test_sends_personal_content_with_tracked_links(worker, stores, clock) -> None:
    mid = _enqueue(stores, clock, "ann", "k1")
    assert worker.run_until_idle() == 1
    [(_, rendered)] = worker.sender.sent
    assert rendered.subject == "Hi Ann" and rendered.text == "2 picks"
    assert "Item 0 for ann" in rendered.html and "https://t.example/t/c/" in rendered.html
    link = stores.outbox.get_link(mid, "r0")
    assert link.item_id == "ann-0" and link.recommendation_id == f"msg-{mid}"
    assert stores.outbox.get(mid).status == DeliveryStatus.SENT


def test_unsubscribe_is_effective_for_the_very_next_send(worker, stores, clock) -> None:
    first = _enqueue(stores, clock, "ann", "k1")
    second = _enqueue(stores, clock, "ann", "k2")
    worker.batch_size = 1
    worker.run_once()
    assert stores.outbox.get(first).status == DeliveryStatus.SENT
    stores.suppressions.suppress("t", "ann", "email", clock(), "one-click")
    worker.run_once()
    assert stores.outbox.get(second).status == DeliveryStatus.SUPPRESSED
    assert len(worker.sender.sent) == 1


def test_consent_is_checked_at_send_time_not_queue_time(worker, stores, clock, consents) -> None:
    mid = _enqueue(stores, clock, "bob", "k1")
    consents.discard(("bob", "email_marketing"))
    worker.run_until_idle()
    assert stores.outbox.get(mid).status == DeliveryStatus.SUPPRESSED
    assert "no consent" in stores.outbox.get(mid).last_error


def test_transactional_messages_skip_consent_and_caps(worker, stores, clock, consents) -> None:
    consents.clear()
    stores.suppressions.suppress("t", "bob", "email", clock(), "x")
    ids = [_enqueue(stores, clock, "bob", f"k{i}", transactional=True) for i in range(4)]
    worker.run_until_idle()
    assert [stores.outbox.get(i).status for i in ids] == [DeliveryStatus.SENT] * 4


def test_frequency_cap_defers_to_the_next_local_day(worker, stores, clock) -> None:
    ids = [_enqueue(stores, clock, "ann", f"k{i}") for i in range(3)]
    worker.batch_size = 1
    for _ in range(3):
        worker.run_once()
    third = stores.outbox.get(ids[2])
    assert third.status == DeliveryStatus.DEFERRED
    # Berlin midnight after Monday 13:00 local = Monday 23:00 UTC
    assert third.not_before.isoformat() == "2026-03-02T23:00:00+00:00"
    clock.advance(timedelta(hours=11))
    worker.run_until_idle()
    assert stores.outbox.get(ids[2]).status == DeliveryStatus.SENT


def test_quiet_hours_defer_rather_than_drop(worker, stores, clock) -> None:
    worker.guardrails = Guardrails(quiet_hours=QuietHours(start=12, end=14))
    mid = _enqueue(stores, clock, "bob", "k1")  # noon UTC, Bob's zone is UTC
    worker.run_until_idle()
    deferred = stores.outbox.get(mid)
    assert deferred.status == DeliveryStatus.DEFERRED
    assert deferred.not_before == clock() + timedelta(hours=2)
    clock.advance(timedelta(hours=2))
    worker.run_until_idle()
    assert stores.outbox.get(mid).status == DeliveryStatus.SENT


def test_transient_failures_retry_with_backoff_then_fail(worker, stores, clock) -> None:
    worker.sender.failures = [
        TransientSendError("421"),
        TransientSendError("421"),
        TransientSendError("421"),
    ]
    mid = _enqueue(stores, clock, "bob", "k1")
    worker.run_until_idle()
    m = stores.outbox.get(mid)
    assert m.status == DeliveryStatus.DEFERRED and m.not_before == clock() + timedelta(seconds=10)
    clock.advance(timedelta(seconds=10))
    worker.run_until_idle()
    m = stores.outbox.get(mid)
    assert m.not_before == clock() + timedelta(seconds=20) and m.attempts == 2
    clock.advance(timedelta(seconds=20))
    worker.run_until_idle()
    m = stores.outbox.get(mid)
    assert m.status == DeliveryStatus.FAILED and m.attempts == 3 and worker.sender.sent == []


def test_permanent_failure_is_not_retried(worker, stores, clock) -> None:
    worker.sender.failures = [PermanentSendError("550 no such user")]
    mid = _enqueue(stores, clock, "bob", "k1")
    worker.run_until_idle()
    assert stores.outbox.get(mid).status == DeliveryStatus.FAILED
    assert stores.outbox.get(mid).last_error == "550 no such user"


def test_unknown_user_and_template(worker, stores, clock) -> None:
    gone = _enqueue(stores, clock, "erased", "k1")
    bad = new_message("t", "bob", "missing", dedup_key="k2", now=clock())
    stores.outbox.enqueue(bad)
    worker.run_until_idle()
    assert stores.outbox.get(gone).status == DeliveryStatus.SUPPRESSED
    assert stores.outbox.get(bad.message_id).status == DeliveryStatus.FAILED


def test_retry_policy_grows_and_is_capped() -> None:
    policy = RetryPolicy(base=timedelta(seconds=30), max_delay=timedelta(minutes=5), jitter=0.2)
    rng = random.Random(7)
    delays = [policy.delay(a, rng).total_seconds() for a in range(1, 8)]
    assert 24 <= delays[0] <= 36 and 48 <= delays[1] <= 72
    assert all(d <= 360 for d in delays) and delays[-1] >= 240


def test_inbox_channel_delivers_to_the_in_app_inbox(worker, stores, clock, consents) -> None:
    consents.add(("ann", "push_marketing"))
    denied = _enqueue(stores, clock, "bob", "k0", channel="inbox")  # no push_marketing consent
    worker.senders = {"inbox": InboxSender(stores.inbox, clock=clock)}
    mid = _enqueue(stores, clock, "ann", "k1", channel="inbox", purpose="push_marketing")
    other = _enqueue(stores, clock, "bob", "k2", channel="inbox", transactional=True)
    worker.run_until_idle()
    [entry] = list_inbox(stores.inbox, "t", "ann")
    assert entry.entry_id == mid and entry.subject == "Hi Ann" and entry.text == "2 picks"
    assert mark_read(stores.inbox, "t", "ann", [mid, other], now=clock()) == 1
    assert list_inbox(stores.inbox, "t", "ann", unread_only=True) == []
    assert [e.entry_id for e in list_inbox(stores.inbox, "t", "bob", unread_only=True)] == [other]
    assert stores.outbox.get(denied).status == DeliveryStatus.SUPPRESSED


def test_person_insights_are_read_only_for_templates_that_use_them(worker, stores,
                                                                  clock) -> None:
    asked: list[str] = []

    def insights(tenant: str, user_id: str) -> dict[str, object]:
        asked.append(user_id)
        return {"status": "ok", "top_interest": "shoes"}

    worker.insights = insights
    _enqueue(stores, clock, "ann", "k1")
    assert worker.run_until_idle() == 1
    assert asked == []  # the template does not read person
    tailored = TEMPLATE.model_copy(update={"variants": [
        TEMPLATE.variants[0].model_copy(update={
            "subject": "{{ person.insights.top_interest }} for {{ user.name }}",
            "text": "{{ person.insights.churn_risk is none }}"})]})
    worker.templates = lambda tenant, name: tailored
    _enqueue(stores, clock, "bob", "k2")
    assert worker.run_until_idle() == 1
    assert asked == ["bob"]
    rendered = worker.sender.sent[-1][1]
    assert rendered.subject == "shoes for Bob" and rendered.text == "True"


def test_marketing_held_back_transactional_not(worker, stores, clock) -> None:
    worker.hold_back = lambda tenant, user_id: "held back after a complaint" if user_id == "ann" \
        else None
    held = _enqueue(stores, clock, "ann", "k1")
    service = _enqueue(stores, clock, "ann", "k2", transactional=True)
    other = _enqueue(stores, clock, "bob", "k3")
    worker.run_until_idle()
    assert stores.outbox.get(held).status == DeliveryStatus.SUPPRESSED
    assert "complaint" in (stores.outbox.get(held).last_error or "")
    assert stores.outbox.get(service).status == DeliveryStatus.SENT
    assert stores.outbox.get(other).status == DeliveryStatus.SENT
