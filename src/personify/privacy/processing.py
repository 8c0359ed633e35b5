"""Which events may feed a person's profile, the online state and the models.

Events are always stored as the ingestion policy allows; *using* them for profiling needs the
``profiling`` consent (or its opt-out default), an unrestricted user (GDPR art. 18) and no
erasure tombstone. The online-state listener and the training job apply this gate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from personify.domain.consents import Purpose
from personify.domain.events import Event
from personify.privacy.consent import ConsentPolicy
from personify.storage.ports import UserStore

ANON = "anon:"


class ProcessingGate:
    """``may_profile(tenant, subject)`` for a user id or ``anon:<anonymous id>``.

    An anonymous subject linked to a user follows that user's decision; an unlinked one follows
    consent recorded under ``anon:<id>`` (the JS snippet records it so), else the default.
    """

    def __init__(
        self,
        policy: ConsentPolicy,
        users: UserStore,
        is_erased: Callable[[str, str], bool] = lambda tenant, user_id: False,
        *,
        purpose: str = Purpose.PROFILING.value,
    ) -> None:
        self.policy = policy
        self.users = users
        self.is_erased = is_erased
        self.purpose = purpose

    def may_profile(self, tenant: str, subject: str) -> bool:
        """Whether the subject's events may feed profiles, online state and models now."""
        return self.refusal(tenant, subject) is None

    def refusal(self, tenant: str, subject: str) -> str | None:
        """Why the subject's events may not be profiled (None: they may): ``erased``,
        ``restricted``, or the consent decision's basis (``default:opt-in`` when nothing was
        recorded and the purpose is opt-in, ``denied`` / ``withdrawn`` for a record)."""
        if self.is_erased(tenant, subject):
            return "erased"
        person = subject
        if subject.startswith(ANON):
            owner = self.users.get_by_anonymous(tenant, subject[len(ANON):])
            if owner is not None:
                if self.is_erased(tenant, owner.user_id):
                    return "erased"
                if owner.restricted:
                    return "restricted"
                person = owner.user_id
        else:
            user = self.users.get(tenant, subject)
            if user is not None and user.restricted:
                return "restricted"
        decision = self.policy.decide(tenant, person, self.purpose)
        return None if decision.allowed else f"consent {decision.basis}"

    def admit(self, tenant: str, events: Sequence[Event]) -> list[Event]:
        """The events of a batch whose subjects may be profiled (one decision per subject)."""
        keep = self.event_filter(tenant)
        return [event for event in events if keep(event)]

    def event_filter(self, tenant: str) -> Callable[[Event], bool]:
        """A predicate for one pass over events (training), deciding each subject once."""
        decided: dict[str, bool] = {}

        def keep(event: Event) -> bool:
            subject = event.subject
            found = decided.get(subject)
            if found is None:
                found = decided[subject] = self.may_profile(tenant, subject)
            return found

        return keep

    def subjects_allowed(self, tenant: str, subjects: Iterable[str]) -> set[str]:
        """The subjects among ``subjects`` that may be profiled."""
        return {s for s in set(subjects) if self.may_profile(tenant, s)}
