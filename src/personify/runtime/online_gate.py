"""The privacy gate in front of the online state, decided for a whole ingested batch at once.

:meth:`ProcessingGate.admit` asks the stores three or four questions per distinct subject
(erasure, user record, consent), which at 2,000 subjects per batch cost milliseconds per event.
:class:`BatchGate` reads the same facts for every subject of the batch in a few bulk queries,
then runs the unchanged :meth:`ProcessingGate.may_profile` logic against that snapshot, so the
decisions are the gate's own. Stores without the bulk reads fall back to the gate itself.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from personify.domain.consents import ConsentRecord
from personify.domain.events import Event
from personify.domain.users import User
from personify.privacy.consent import ConsentPolicy
from personify.privacy.processing import ANON, ProcessingGate
from personify.storage.ports import ConsentStore, ErasureStore, UserStore


class _UsersSnapshot:
    """The two user reads ``may_profile`` makes, answered from prefetched records."""

    def __init__(self, by_id: Mapping[str, User], by_anonymous: Mapping[str, User]) -> None:
        self._by_id, self._by_anonymous = by_id, by_anonymous

    def get(self, tenant: str, user_id: str) -> User | None:
        return self._by_id.get(user_id)

    def get_by_anonymous(self, tenant: str, anonymous_id: str) -> User | None:
        return self._by_anonymous.get(anonymous_id)


class ConsentsSnapshot:
    """``current`` answered from consent states read once for the batch."""

    def __init__(self, current: Mapping[str, dict[str, ConsentRecord]]) -> None:
        self._current = current

    def current(
        self, tenant: str, user_id: str, *, now: datetime | None = None
    ) -> dict[str, ConsentRecord]:
        return dict(self._current.get(user_id, {}))


class BatchGate:
    """``admit(tenant, events)`` with the decisions of ``gate``, in O(1) queries per batch.

    The snapshot is read at the start of the call, as the per-subject reads would be moments
    later; consent expiry is evaluated at that one instant (the policy's clock). Subjects the
    snapshot did not read (their person may not be profiled) are refused by the gate's own
    consent check, so every decision is the gate's.
    """

    def __init__(
        self,
        gate: ProcessingGate,
        users: UserStore,
        consents: ConsentStore,
        erasures: ErasureStore,
    ) -> None:
        self.gate, self.users, self.consents, self.erasures = gate, users, consents, erasures
        self._bulk = all(
            callable(getattr(store, name, None))
            for store, name in (
                (users, "get_many"),
                (users, "get_many_by_anonymous"),
                (consents, "current_many"),
            )
        )

    def admit(self, tenant: str, events: Sequence[Event]) -> list[Event]:
        """The events whose subjects may be profiled now (the gate's own decisions)."""
        if not events:
            return []
        if not self._bulk:
            return self.gate.admit(tenant, events)
        return self._snapshot(tenant, {event.subject for event in events}).admit(tenant, events)

    def _snapshot(self, tenant: str, subjects: Collection[str]) -> ProcessingGate:
        """A gate over the facts of ``subjects`` read in bulk now.

        Consent is read first: a subject whose person may not be profiled is refused whatever
        its user record or erasure say, so only the others' records and tombstones are read
        (on a fresh, opt-in installation that is nobody).
        """
        bulk_users: Any = self.users
        bulk_consents: Any = self.consents
        user_ids = [s for s in subjects if not s.startswith(ANON)]
        anonymous = [s[len(ANON) :] for s in subjects if s.startswith(ANON)]
        owners: dict[str, User] = (
            bulk_users.get_many_by_anonymous(tenant, anonymous) if anonymous else {}
        )
        person_of = {s: s for s in user_ids}
        for anonymous_id in anonymous:
            owner = owners.get(anonymous_id)
            person_of[f"{ANON}{anonymous_id}"] = (
                owner.user_id if owner is not None else f"{ANON}{anonymous_id}"
            )
        policy = self.gate.policy
        moment = policy.clock()
        current = bulk_consents.current_many(tenant, list(set(person_of.values())), now=moment)
        snapshot_policy = ConsentPolicy(
            cast(ConsentStore, ConsentsSnapshot(current)), policy.defaults, clock=lambda: moment
        )
        consenting = {
            person
            for person in set(person_of.values())
            if snapshot_policy.allows(tenant, person, self.gate.purpose)
        }
        candidates = {s for s, person in person_of.items() if person in consenting}
        wanted = [s for s in candidates if not s.startswith(ANON)]
        by_id: dict[str, User] = bulk_users.get_many(tenant, wanted) if wanted else {}
        checked = {*candidates, *(person_of[s] for s in candidates)}  # with anonymous owners
        erased = self.erasures.erased_among(tenant, checked) if checked else set()
        return ProcessingGate(
            snapshot_policy,
            cast(UserStore, _UsersSnapshot(by_id, owners)),
            lambda _tenant, user_id: user_id in erased,
            purpose=self.gate.purpose,
        )
