"""What training needs from privacy: which events it may use, and the influence index it saves
next to each model version so an erasure can subtract a person from the served model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from personify.algorithms.base import Recommender
from personify.algorithms.ease import EASE
from personify.data.events import EventWeights
from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.domain.events import Event
from personify.privacy.ease_inverse import load_ease_inverse, save_ease_inverse
from personify.privacy.model_influence import (
    TOMBSTONE_KEYS,
    build_influence,
    influence_of,
    save_influence,
    version_dir,
)
from personify.privacy.processing import ProcessingGate
from personify.privacy.pseudonyms import Pseudonymizer, TombstoneKeyPseudonyms
from personify.privacy.retention import RetentionPolicy
from personify.storage.model_files import FileModelStore


@dataclass
class TrainingPrivacy:
    """Pass to ``personify.jobs.training.train_tenant(privacy=...)``.

    ``event_filter`` drops events of people without profiling consent, restricted or erased
    people, and events past their retention; ``record_influence`` writes the version's index.
    Its rows are keyed by ``influence_keys`` (the erasure tombstones' keys, so that a later
    tombstone names its row: see ``personify.privacy.model_versions``), else by ``pseudonyms``.
    """

    gate: ProcessingGate | None
    pseudonyms: Pseudonymizer
    retention: RetentionPolicy | None = None
    influence_keys: Pseudonymizer | None = None

    def event_filter(
        self, tenant: str, now: datetime | None = None, *, excluded: Counter[str] | None = None
    ) -> Callable[[Event], bool]:
        """A predicate for one training pass; ``excluded`` counts the refused events per reason
        (``past retention``, ``erased``, ``restricted``, ``consent default:opt-in``, ...)."""
        gate = self.gate
        fresh = self.retention.event_filter(now or datetime.now(UTC)) if self.retention else None
        decided: dict[str, str | None] = {}

        def keep(event: Event) -> bool:
            reason: str | None = None
            if fresh is not None and not fresh(event):
                reason = "past retention"
            elif gate is not None:
                subject = event.subject
                if subject not in decided:
                    decided[subject] = gate.refusal(tenant, subject)
                reason = decided[subject]
            if reason is not None and excluded is not None:
                excluded[reason] += 1
            return reason is None

        return keep

    def _key(self, tenant: str) -> tuple[Callable[[str], str], str]:
        keys = self.influence_keys or self.pseudonyms
        scheme = TOMBSTONE_KEYS if isinstance(keys, TombstoneKeyPseudonyms) else ""
        return (lambda subject: keys.pseudonym(tenant, subject)), scheme

    def record_influence(
        self,
        models: FileModelStore,
        tenant: str,
        version: str,
        items: Vocabulary,
        events: Iterable[Event],
        *,
        weights: EventWeights,
        half_life_days: float,
    ) -> None:
        """The index of ``version`` from a second pass over ``events`` (prefer
        :meth:`record_influence_of` with the training pass's interactions)."""
        key, scheme = self._key(tenant)
        index = build_influence(events, items, key=key, weights=weights,
                                half_life_days=half_life_days, key_scheme=scheme)
        save_influence(version_dir(models, tenant, version), index)

    def record_influence_of(
        self, models: FileModelStore, tenant: str, version: str, data: Interactions, *,
        half_life_days: float,
    ) -> None:
        """The index of ``version`` from the interactions it was fitted on."""
        key, scheme = self._key(tenant)
        index = influence_of(data, key=key, half_life_days=half_life_days, key_scheme=scheme)
        directory = version_dir(models, tenant, version)
        index.ease = load_ease_inverse(directory)  # kept by :meth:`record_model`, if any
        save_influence(directory, index)

    def record_model(
        self, models: FileModelStore, tenant: str, version: str, model: Recommender,
        neighbours: int,
    ) -> None:
        """Keep what an exact erasure needs of the fitted neighbour ``model`` beyond the
        influence index: for binary ``ease``, its inverse ``P`` (``ease_inverse.npy``,
        ``n_items^2`` floats in the model's dtype). Call before :meth:`record_influence_of`."""
        if isinstance(model, EASE) and model.binary:
            save_ease_inverse(version_dir(models, tenant, version), model, neighbours)
