"""From exposures and events to per-unit metric samples (exposed units only).

Built-in metrics (name -> kind): ``conversion`` (proportion: purchased after exposure),
``ctr`` (ratio: clicked personalized impressions / personalized impressions), ``revenue`` (mean:
revenue per unit), ``orders`` (mean), ``clicks`` (mean). Events before a unit's exposure feed the
same metric as the CUPED covariate.

Ordering: an event belongs to the exposed period when it is at or after the exposure's timestamp,
or when it carries the exposure's recommendation id. The serving chain logs a recommendation's
impression before the exposure record it causes (a few ms earlier), and that impression, with the
clicks on it, is what the unit was exposed to: it counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime

import numpy as np

from personify.domain.errors import InvalidInput
from personify.domain.events import Event, EventType
from personify.experiments.analysis import MetricSamples
from personify.experiments.definitions import Experiment
from personify.experiments.kpis import event_revenue
from personify.experiments.ports import ExposureRecord

BUILTIN_METRICS = ("conversion", "ctr", "revenue", "orders", "clicks")


def unit_of(event: Event, aliases: Mapping[str, str] | None = None) -> str:
    """The assignment unit of an event, the same key ``assignment_unit`` gave (read-only)."""
    if event.user_id is not None and aliases and event.user_id in aliases:
        return aliases[event.user_id]
    if event.anonymous_id is not None:
        return f"anon:{event.anonymous_id}"
    return f"user:{event.user_id}"


class _Tally:
    __slots__ = ("clicked", "clicks", "impressions", "orders", "purchased", "revenue")

    def __init__(self) -> None:
        self.impressions: set[str] = set()
        self.clicked: set[str] = set()
        self.clicks = 0
        self.orders: set[str] = set()
        self.purchased = False
        self.revenue = 0.0

    def add(self, e: Event) -> None:
        if e.type == EventType.IMPRESSION and e.recommendation_id:
            self.impressions.add(e.recommendation_id)
        elif e.type == EventType.CLICK:
            self.clicks += 1
            if e.recommendation_id:
                self.clicked.add(e.recommendation_id)
        elif e.type == EventType.PURCHASE:
            self.purchased = True
            self.orders.add(e.order_id or e.event_id)
            self.revenue += event_revenue(e)

    def value(self, metric: str) -> tuple[float, float]:
        if metric == "conversion":
            return float(self.purchased), 1.0
        if metric == "ctr":
            return float(len(self.clicked & self.impressions)), float(len(self.impressions))
        if metric == "revenue":
            return self.revenue, 1.0
        if metric == "orders":
            return float(len(self.orders)), 1.0
        return float(self.clicks), 1.0


def samples_from_events(
    experiment: Experiment,
    exposures: Iterable[ExposureRecord],
    events: Iterable[Event],
    *,
    aliases: Mapping[str, str] | None = None,
    until: datetime | None = None,
    covariates: bool = True,
) -> dict[str, dict[str, MetricSamples]]:
    """``data[variant][metric]`` for :func:`personify.experiments.analysis.analyze`."""
    metrics = [experiment.primary_metric.name, *(m.name for m in experiment.guardrail_metrics)]
    for m in metrics:
        if m not in BUILTIN_METRICS:
            raise InvalidInput(
                f"no built-in event metric {m!r}",
                field="metric",
                accepted=", ".join(BUILTIN_METRICS),
            )
    first = {x.unit: x for x in exposures}
    after: dict[str, _Tally] = defaultdict(_Tally)
    before: dict[str, _Tally] = defaultdict(_Tally)
    for e in events:
        unit = unit_of(e, aliases)
        exp = first.get(unit)
        if exp is None or (until is not None and e.timestamp > until):
            continue
        caused = exp.recommendation_id is not None and e.recommendation_id == exp.recommendation_id
        (after if caused or e.timestamp >= exp.timestamp else before)[unit].add(e)
    data: dict[str, dict[str, MetricSamples]] = {}
    for v in experiment.variants:
        units = [u for u, x in first.items() if x.variant == v.name]
        data[v.name] = {}
        for m in metrics:
            pairs = np.array([after[u].value(m) for u in units]).reshape(-1, 2)
            cov = np.array([before[u].value(m)[0] for u in units]) if covariates else None
            data[v.name][m] = MetricSamples(
                values=pairs[:, 0],
                denominators=pairs[:, 1] if m == "ctr" else None,
                covariate=cov,
            )
    return data
