"""The insights batch job: one pass over a tenant's events (only those the privacy filter admits)
fits the population artefact (BG/NBD, Gamma-Gamma, RFM edges, price references) and, when asked
(``train`` extra: LightGBM, scikit-learn), the churn and propensity models and everyone's scores."""

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


def require_training_extra() -> None:
    """ConfigurationError naming the extra when LightGBM / scikit-learn are missing."""
    import importlib.util

    from personify.domain.errors import ConfigurationError

    missing = [m for m in ("lightgbm", "sklearn") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigurationError(
            f"churn and propensity models need {', '.join(missing)}",
            field="predictions", accepted="pip install 'personify[train]'",
        )


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
    predictions: bool = False,
    clusters: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> InsightsFitResult:
    """Fit and save ``<root>/insights/<tenant>.json``; ``as_of`` defaults to now. ``clusters``:
    also cluster people (matched to the previous fit's clusters)."""
    if predictions or clusters:
        require_training_extra()
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
    if predictions:
        from personify.insights.predictions import score_population

        score_population(population, events, as_of=cut)
    files = PopulationFiles(root)
    if clusters:
        from personify.insights.clusters import fit_clusters, person_features

        before = files.load(tenant)
        population.clusters = fit_clusters(
            person_features(events, cut), before.clusters if before is not None else None)
    path = files.save(population)
    seconds = time.perf_counter() - started
    log.info("insights for %s fitted on %d customers in %.1fs", tenant, population.customers,
             seconds)
    return InsightsFitResult(population, path, seconds)


def evaluate_predictions(
    stores: Stores,
    tenant: str,
    *,
    event_filter: Callable[[Event], bool] | None = None,
    end: datetime | None = None,
    rounds: int = 200,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, object]:
    """Churn / propensity / CLV against the recency rule and BG/NBD on the temporal split that
    ends at ``end`` (default: the day after the newest event)."""
    require_training_extra()
    from personify.insights.predictions import DAY, Activity, evaluate

    events = [
        e for e in stores.events.scan(tenant, until=end)
        if e.type != "impression" and (event_filter is None or event_filter(e))
    ]
    if not events:
        from personify.domain.errors import InvalidInput

        raise InvalidInput("no events to evaluate on", field="tenant",
                           accepted="a tenant with purchase events over at least 180 days")
    last = max(e.timestamp for e in events).timestamp()
    stop = end.timestamp() if end is not None else (last // DAY + 1) * DAY
    try:
        return evaluate(Activity.from_events(events), stop, rounds=rounds)
    except ValueError as exc:  # too few people or one class in a window
        from personify.domain.errors import InvalidInput

        raise InvalidInput(f"not enough history to evaluate: {exc}", field="tenant",
                           accepted="at least 20 customers with purchases before each cut and "
                                    "both outcomes in each window") from exc
