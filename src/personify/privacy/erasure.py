"""Erasure orchestration: one call removes a person from every store, the online state, caches
and the served model, and leaves only a non-identifying tombstone and a receipt.

Order matters: the tombstone comes first, so events arriving while the erasure runs are refused
and a replay can never re-create the person.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from personify.privacy.model_influence import ModelForgetResult
from personify.privacy.preferences import PreferenceStore
from personify.privacy.pseudonyms import Pseudonymizer, tombstone_key
from personify.privacy.replay import ReplayFence
from personify.storage.online.port import OnlineState
from personify.storage.ports import ConsentStore, ErasureStore, EventStore, UserStore

log = logging.getLogger(__name__)
ANON = "anon:"

ModelForgetter = Callable[[str, list[str]], ModelForgetResult]
"""``(tenant, pseudonymized subjects) -> result``: subtract rows from the served model."""
Forgetter = Callable[[str, Sequence[str]], int]
"""``(tenant, subjects) -> records removed``: another capability's data about the subjects."""


@dataclass
class ErasureResult:
    """What one erasure removed; the API turns it into the receipt."""

    subject: str
    receipt_id: str
    erased_at: datetime
    profile_deleted: bool = False
    events_deleted: int = 0
    consents_deleted: int = 0
    preferences_deleted: bool = False
    online_subjects_forgotten: int = 0
    other_records_deleted: int = 0
    model: ModelForgetResult = field(default_factory=lambda: ModelForgetResult("no_model"))
    seconds: float = 0.0

    @property
    def retrain_pending(self) -> bool:
        """True when some model influence waits for the next retrain (see docs/privacy.md)."""
        return self.model.status in ("subtracted", "no_influence_index") and not (
            self.model.status == "subtracted"
            and self.model.exact_neighbours
            and not self.model.lists_dropped
        )


class ErasureService:
    """Erase a user (with their linked anonymous ids), an anonymous id, or many users."""

    def __init__(
        self,
        *,
        users: UserStore,
        events: EventStore,
        consents: ConsentStore,
        erasures: ErasureStore,
        pseudonyms: Pseudonymizer,
        preferences: PreferenceStore | None = None,
        state: OnlineState | None = None,
        forget_model: ModelForgetter | None = None,
        mark_erased: Callable[[str, str], None] | None = None,
        forgetters: Sequence[Forgetter] = (),
        fence: ReplayFence | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.users = users
        self.events = events
        self.consents = consents
        self.erasures = erasures
        self.pseudonyms = pseudonyms
        self.preferences = preferences
        self.state = state
        self.forget_model = forget_model
        self.mark_erased = mark_erased
        self.forgetters = list(forgetters)
        self.fence = fence
        self.clock = clock

    def erase_user(self, tenant: str, user_id: str) -> ErasureResult:
        """Erase ``user_id`` and every anonymous id linked to them."""
        return self.erase_many(tenant, [user_id])[0]

    def erase_anonymous(self, tenant: str, anonymous_id: str) -> ErasureResult:
        """Erase an anonymous visitor; if the id is linked to a user, that whole user."""
        owner = self.users.get_by_anonymous(tenant, anonymous_id)
        if owner is not None:
            return self.erase_user(tenant, owner.user_id)
        return self._erase(tenant, f"{ANON}{anonymous_id}", None, [anonymous_id])[0]

    def erase_many(self, tenant: str, user_ids: Iterable[str]) -> list[ErasureResult]:
        """Erase several users; the served model is rewritten once for all of them."""
        results: list[ErasureResult] = []
        keys: list[str] = []
        for user_id in dict.fromkeys(user_ids):
            user = self.users.get(tenant, user_id)
            anonymous = list(user.anonymous_ids) if user is not None else []
            result, subjects = self._erase(tenant, user_id, user_id, anonymous, model=False)
            results.append(result)
            keys.extend(self._model_keys(tenant, subjects))
        started = time.perf_counter()
        outcome = self._forget_model(tenant, keys)
        for result in results:
            result.model = outcome
            result.seconds += time.perf_counter() - started
        return results

    def _erase(
        self,
        tenant: str,
        subject: str,
        user_id: str | None,
        anonymous_ids: list[str],
        *,
        model: bool = True,
    ) -> tuple[ErasureResult, list[str]]:
        started = time.perf_counter()
        now = self.clock()
        result = ErasureResult(subject, uuid.uuid4().hex, now)
        subjects = [subject, *(f"{ANON}{a}" for a in anonymous_ids if f"{ANON}{a}" != subject)]
        for who in subjects:
            self.erasures.record(tenant, self.erasures.user_id_hash(tenant, who), now,
                                 result.receipt_id)
            if self.mark_erased is not None:
                self.mark_erased(tenant, who)
        result.events_deleted = self.events.delete_user(
            tenant, user_id if user_id is not None else subject, anonymous_ids
        )
        result.consents_deleted = sum(self.consents.delete_user(tenant, s) for s in subjects)
        if self.preferences is not None:
            result.preferences_deleted = any(
                [self.preferences.delete_user(tenant, s) for s in subjects]
            )
        if self.state is not None:
            for who in subjects:
                if self.fence is not None:  # a replay in flight must not bring them back
                    self.fence.forget(self.state, tenant, who)
                else:
                    self.state.forget_user(tenant, who)
            result.online_subjects_forgotten = len(subjects)
        for forget in self.forgetters:
            result.other_records_deleted += forget(tenant, subjects)
        if user_id is not None:
            result.profile_deleted = self.users.delete(tenant, user_id)
        if model:
            result.model = self._forget_model(tenant, self._model_keys(tenant, subjects))
        result.seconds = time.perf_counter() - started
        log.info(
            "erased subject %s (receipt %s) in %.3fs",
            self.pseudonyms.pseudonym(tenant, subject), result.receipt_id, result.seconds,
        )
        return result, subjects

    def _model_keys(self, tenant: str, subjects: Sequence[str]) -> list[str]:
        """The subjects' row keys in a model influence index: the tombstone key (current
        indexes) and the pseudonym (indexes written under a ``pseudonym_secret`` before)."""
        keys: list[str] = []
        for s in subjects:
            keys.append(tombstone_key(self.erasures.user_id_hash(tenant, s)))
            keys.append(self.pseudonyms.pseudonym(tenant, s))
        return list(dict.fromkeys(keys))

    def _forget_model(self, tenant: str, keys: list[str]) -> ModelForgetResult:
        if self.forget_model is None or not keys:
            return ModelForgetResult("no_model")
        try:
            return self.forget_model(tenant, keys)
        except Exception:  # the data is gone already; the retrain will finish the job
            log.exception("could not subtract erased rows from the served model")
            return ModelForgetResult("failed")
