"""Contract of the messaging ports, run against the memory and SQLite adapters."""

from __future__ import annotations

from datetime import timedelta

from personify.messaging.outbox import new_message
from personify.messaging.records import (
    DeliveryStatus,
    InboxEntry,
    JourneyRun,
    RunStatus,
    TrackedLink,
)


def test_enqueue_is_idempotent_by_dedup_key(stores, clock) -> None:
    first = new_message("t1", "u1", "welcome", dedup_key="k1", context={"a": 1}, now=clock())
    again = new_message("t1", "u1", "welcome", dedup_key="k1", context={"a": 2}, now=clock())
    other_tenant = new_message("t2", "u1", "welcome", dedup_key="k1", now=clock())
    stored, created = stores.outbox.enqueue(first)
    assert created and stored.message_id == first.message_id
    stored, created = stores.outbox.enqueue(again)
    assert not created and stored.context["a"] == 1
    assert stores.outbox.enqueue(other_tenant)[1]
    assert stores.outbox.counts() == {"queued": 2}


def test_claim_leases_and_fences_an_expired_worker(stores, clock) -> None:
    message = new_message("t", "u", "tpl", dedup_key="k", now=clock())
    stores.outbox.enqueue(message)
    [claimed] = stores.outbox.claim("w1", clock(), limit=10, lease=timedelta(seconds=30))
    assert claimed.status == DeliveryStatus.SENDING and not claimed.in_doubt
    assert stores.outbox.claim("w2", clock(), limit=10, lease=timedelta(seconds=30)) == []
    assert stores.outbox.begin_send(claimed.message_id, claimed.claim_token)
    # w1 dies after starting the send; the lease expires and w2 takes over, in doubt
    later = clock() + timedelta(seconds=31)
    [reclaimed] = stores.outbox.claim("w2", later, limit=10, lease=timedelta(seconds=30))
    assert reclaimed.in_doubt
    assert not stores.outbox.mark(
        claimed.message_id, claimed.claim_token, DeliveryStatus.SENT, later
    )
    assert stores.outbox.mark(
        reclaimed.message_id, reclaimed.claim_token, DeliveryStatus.SENT, later, attempts=1
    )
    done = stores.outbox.get(message.message_id)
    assert done.status == DeliveryStatus.SENT and done.sent_at == later and done.attempts == 1


def test_lease_expiry_without_send_start_is_not_in_doubt(stores, clock) -> None:
    stores.outbox.enqueue(new_message("t", "u", "tpl", dedup_key="k", now=clock()))
    stores.outbox.claim("w1", clock(), limit=1, lease=timedelta(seconds=5))
    [again] = stores.outbox.claim(
        "w2", clock() + timedelta(seconds=6), limit=1, lease=timedelta(seconds=5)
    )
    assert not again.in_doubt


def test_deferred_messages_wait_for_not_before(stores, clock) -> None:
    stores.outbox.enqueue(new_message("t", "u", "tpl", dedup_key="k", now=clock()))
    [m] = stores.outbox.claim("w", clock(), limit=1, lease=timedelta(seconds=5))
    until = clock() + timedelta(hours=2)
    stores.outbox.mark(
        m.message_id, m.claim_token, DeliveryStatus.DEFERRED, clock(), not_before=until
    )
    assert (
        stores.outbox.claim("w", until - timedelta(seconds=1), limit=1, lease=timedelta(seconds=5))
        == []
    )
    assert len(stores.outbox.claim("w", until, limit=1, lease=timedelta(seconds=5))) == 1


def test_count_sent_window_channel_and_transactional(stores, clock) -> None:
    for key, transactional, channel in [
        ("a", False, "email"),
        ("b", True, "email"),
        ("c", False, "push"),
    ]:
        stores.outbox.enqueue(
            new_message(
                "t",
                "u",
                "tpl",
                dedup_key=key,
                channel=channel,
                transactional=transactional,
                now=clock(),
            )
        )
    for m in stores.outbox.claim("w", clock(), limit=10, lease=timedelta(seconds=5)):
        stores.outbox.mark(m.message_id, m.claim_token, DeliveryStatus.SENT, clock())
    day = timedelta(days=1)
    assert stores.outbox.count_sent("t", "u", "email", clock() - day, clock() + day) == 1
    assert stores.outbox.count_sent("t", "u", "push", clock() - day, clock() + day) == 1
    assert (
        stores.outbox.count_sent("t", "u", "email", clock() + timedelta(seconds=1), clock() + day)
        == 0
    )


def test_links_round_trip(stores) -> None:
    links = {"r0": TrackedLink("https://shop.example/i/1", "i1", "rec-1")}
    stores.outbox.save_links("m1", links)
    assert stores.outbox.get_link("m1", "r0") == links["r0"]
    assert stores.outbox.get_link("m1", "r1") is None


def test_suppressions_per_channel_and_global(stores, clock) -> None:
    s = stores.suppressions
    assert not s.is_suppressed("t", "u", "email")
    s.suppress("t", "u", "email", clock(), "one-click")
    assert s.is_suppressed("t", "u", "email") and not s.is_suppressed("t", "u", "push")
    s.suppress("t", "u", "*", clock(), "all")
    assert s.is_suppressed("t", "u", "push") and not s.is_suppressed("t2", "u", "push")
    assert s.lift("t", "u", "*") and not s.is_suppressed("t", "u", "push")


def test_inbox_list_and_mark_read(stores, clock) -> None:
    for i in range(3):
        stores.inbox.add(
            InboxEntry(
                f"e{i}", "t", "u", f"s{i}", "text", created_at=clock() + timedelta(minutes=i)
            )
        )
    stores.inbox.add(InboxEntry("x", "t", "other", "s", "text", created_at=clock()))
    assert [e.entry_id for e in stores.inbox.list("t", "u")] == ["e2", "e1", "e0"]
    assert stores.inbox.mark_read("t", "u", ["e1", "x"], clock()) == 1
    assert [e.entry_id for e in stores.inbox.list("t", "u", unread_only=True)] == ["e2", "e0"]


def test_journey_runs_active_latest_due(stores, clock) -> None:
    run = JourneyRun(
        "r1",
        "t",
        "cart",
        "u",
        entered_at=clock(),
        wake_at=clock() + timedelta(hours=4),
        context={"k": [1]},
    )
    stores.runs.save(run)
    assert [r.run_id for r in stores.runs.active("t", "u")] == ["r1"]
    assert stores.runs.due("t", clock()) == []
    assert [r.run_id for r in stores.runs.due("t", clock() + timedelta(hours=4))] == ["r1"]
    run.status = RunStatus.EXITED
    stores.runs.save(run)
    assert stores.runs.active("t", "u") == []
    latest = stores.runs.latest("t", "cart", "u")
    assert latest.status == RunStatus.EXITED and latest.context == {"k": [1]}
