"""What training needs from privacy: which events it may use, and the influence index it saves
next to each model version so an erasure can subtract a person from the served model."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from personify.data.events import EventWeights
from personify.data.vocabulary import Vocabulary
from personify.domain.events import Event
from personify.privacy.model_influence import build_influence, save_influence, version_dir
from personify.privacy.processing import ProcessingGate
from personify.privacy.pseudonyms import Pseudonymizer
from personify.privacy.retention import RetentionPolicy
from personify.storage.model_files import FileModelStore


@dataclass
class TrainingPrivacy:
    """Pass to ``personify.jobs.training.train_tenant(privacy=...)``.

    ``event_filter`` drops events of people without profiling consent, restricted or erased
    people, and events past their retention; ``record_influence`` writes the version's index.
    """

    gate: ProcessingGate | None
    pseudonyms: Pseudonymizer
    retention: RetentionPolicy | None = None

    def event_filter(self, tenant: str, now: datetime | None = None) -> Callable[[Event], bool]:
        allowed = self.gate.event_filter(tenant) if self.gate is not None else None
        fresh = self.retention.event_filter(now or datetime.now(UTC)) if self.retention else None

        def keep(event: Event) -> bool:
            if fresh is not None and not fresh(event):
                return False
            return allowed is None or allowed(event)

        return keep

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
        index = build_influence(
            events, items, key=lambda subject: self.pseudonyms.pseudonym(tenant, subject),
            weights=weights, half_life_days=half_life_days,
        )
        save_influence(version_dir(models, tenant, version), index)
