"""The insights batch job: one pass over a tenant's events (only those the privacy filter admits)
fits the population artefact (BG/NBD, Gamma-Gamma, RFM edges, price references)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from personify.domain.events import Event
from personify.insights.population import (
    Population,
    PopulationFiles,
    fit_from_histories,
    histories,
)
from personify.storage.registry import Stores

log = logging.getLogger(__name__)


@dataclass
class InsightsFitResult:
    population: Population
    path: Path
    seconds: float


def fit_insights(
    stores: Stores,
    root: str | Path,
    tenant: str,
    *,
    event_filter: Callable[[Event], bool] | None = None,
    as_of: datetime | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> InsightsFitResult:
    """Fit and save ``<root>/insights/<tenant>.json``; ``as_of`` defaults to now."""
    import time

    started = time.perf_counter()
    now = clock()
    cut = as_of or now
    events = [
        e for e in stores.events.scan(tenant, until=cut, types=None)
        if e.type != "impression" and (event_filter is None or event_filter(e))
    ]
    people = histories(e for e in events if e.user_id is not None)
    population = fit_from_histories(
        tenant, people, stores.catalog.scan(tenant), as_of=cut, clock=now
    )
    files = PopulationFiles(root)
    path = files.save(population)
    seconds = time.perf_counter() - started
    log.info("insights for %s fitted on %d customers in %.1fs", tenant, population.customers,
             seconds)
    return InsightsFitResult(population, path, seconds)
