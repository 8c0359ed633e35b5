"""What the batch job learns about a tenant's whole customer base: BG/NBD and Gamma-Gamma
parameters, RFM quintile edges, price references and, when trained, each person's churn and
propensity scores. Stored as one JSON file per tenant under the model directory; serving reads it
with the standard library and NumPy / SciPy only."""

from __future__ import annotations

import json
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from personify.domain.events import Event
from personify.domain.items import Item
from personify.insights import clv
from personify.insights.history import PurchaseHistory

FORMAT = "personify-insights/1"
DEFAULT_GAP_DAYS = 30.0


@dataclass
class PersonScores:
    """Batch predictions for one person (written by the prediction job)."""

    churn: float
    propensity: float
    churn_reasons: list[dict[str, Any]] = field(default_factory=list)
    propensity_reasons: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Population:
    tenant: str
    fitted_at: datetime
    as_of: datetime
    customers: int
    bgnbd: clv.BgNbdParams | None = None
    gamma_gamma: clv.GammaGammaParams | None = None
    rfm_edges: dict[str, list[float]] = field(default_factory=dict)
    """Quintile edges (20, 40, 60, 80 %) of recency (days), frequency (purchase days) and
    monetary (total spend) among purchasers."""
    category_price: dict[str, float] = field(default_factory=dict)
    """Median catalogue price per category."""
    price_edges: list[float] = field(default_factory=list)
    """Quartile edges of catalogue prices: budget / mid / upper / premium bands."""
    typical_gap_days: float = DEFAULT_GAP_DAYS
    scores: dict[str, PersonScores] = field(default_factory=dict)
    scores_model: dict[str, Any] = field(default_factory=dict)
    """How the scores were made (model, training cut, metrics on the holdout)."""
    clusters: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "tenant": self.tenant,
            "fitted_at": self.fitted_at.isoformat(),
            "as_of": self.as_of.isoformat(),
            "customers": self.customers,
            "bgnbd": self.bgnbd.as_dict() if self.bgnbd else None,
            "gamma_gamma": self.gamma_gamma.as_dict() if self.gamma_gamma else None,
            "rfm_edges": self.rfm_edges,
            "category_price": self.category_price,
            "price_edges": self.price_edges,
            "typical_gap_days": self.typical_gap_days,
            "scores": {k: vars(v) for k, v in self.scores.items()},
            "scores_model": self.scores_model,
            "clusters": self.clusters,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Population:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        bg = data.get("bgnbd")
        gg = data.get("gamma_gamma")
        return cls(
            tenant=data["tenant"],
            fitted_at=datetime.fromisoformat(data["fitted_at"]),
            as_of=datetime.fromisoformat(data["as_of"]),
            customers=int(data["customers"]),
            bgnbd=clv.BgNbdParams(**bg) if bg else None,
            gamma_gamma=clv.GammaGammaParams(**gg) if gg else None,
            rfm_edges={k: list(v) for k, v in data.get("rfm_edges", {}).items()},
            category_price=dict(data.get("category_price", {})),
            price_edges=list(data.get("price_edges", [])),
            typical_gap_days=float(data.get("typical_gap_days", DEFAULT_GAP_DAYS)),
            scores={k: PersonScores(**v) for k, v in data.get("scores", {}).items()},
            scores_model=dict(data.get("scores_model", {})),
            clusters=dict(data.get("clusters", {})),
        )


def histories(events: Iterable[Event]) -> dict[str, PurchaseHistory]:
    """Every subject's purchase history from one pass over events."""
    out: dict[str, PurchaseHistory] = defaultdict(PurchaseHistory)
    for event in events:
        out[event.subject].add(event)
    return dict(out)


def _quintiles(values: list[float]) -> list[float]:
    if not values:
        return []
    return [float(v) for v in np.quantile(np.asarray(values, dtype=np.float64),
                                          [0.2, 0.4, 0.6, 0.8])]


def fit_population(
    tenant: str, events: Iterable[Event], items: Iterable[Item], *, as_of: datetime,
    clock: datetime | None = None,
) -> Population:
    """Fit the population artefact from the (already consent-filtered) events up to ``as_of``."""
    people = histories(e for e in events if e.timestamp <= as_of)
    return fit_from_histories(tenant, people, items, as_of=as_of, clock=clock)


def fit_from_histories(
    tenant: str, people: Mapping[str, PurchaseHistory], items: Iterable[Item], *,
    as_of: datetime, clock: datetime | None = None,
) -> Population:
    triples: list[tuple[int, float, float]] = []
    repeat_values: list[float] = []
    recency: list[float] = []
    frequency: list[float] = []
    monetary: list[float] = []
    gaps: list[int] = []
    for history in people.values():
        triple = history.triple(as_of)
        if triple is None:
            continue
        triples.append(triple)
        repeat_values.append(history.repeat_mean_value())
        recency.append(history.recency_days(as_of) or 0.0)
        frequency.append(float(len(history.days)))
        monetary.append(history.spend)
        gaps.extend(history.gaps())
    population = Population(
        tenant=tenant, fitted_at=clock or datetime.now(UTC), as_of=as_of, customers=len(triples),
        rfm_edges={"recency": _quintiles(recency), "frequency": _quintiles(frequency),
                   "monetary": _quintiles(monetary)},
        typical_gap_days=float(median(gaps)) if gaps else DEFAULT_GAP_DAYS,
    )
    if len(triples) >= 20:
        x, t_x, T = (np.asarray(col, dtype=np.float64) for col in zip(*triples, strict=True))
        population.bgnbd = clv.fit_bgnbd(x, t_x, T)
        values = np.asarray(repeat_values)
        if int(((x > 0) & (values > 0)).sum()) >= 20:
            population.gamma_gamma = clv.fit_gamma_gamma(x, values)
    prices: dict[str, list[float]] = defaultdict(list)
    all_prices: list[float] = []
    for item in items:
        if item.price is None or item.price <= 0:
            continue
        all_prices.append(item.price)
        for category in item.categories:
            prices[category].append(item.price)
    population.category_price = {c: float(median(v)) for c, v in prices.items()}
    if all_prices:
        population.price_edges = [
            float(v) for v in np.quantile(np.asarray(all_prices), [0.25, 0.5, 0.75])
        ]
    return population


class PopulationFiles:
    """``<root>/insights/<tenant>.json``, written atomically, read with a modification-time
    check (a retrain by another process is picked up on the next read)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root) / "insights"
        self._cache: dict[str, tuple[float, Population]] = {}
        self._lock = threading.Lock()

    def path(self, tenant: str) -> Path:
        return self.root / f"{tenant}.json"

    def save(self, population: Population) -> Path:
        path = self.path(population.tenant)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(population.to_json(), ensure_ascii=False))
        os.replace(tmp, path)
        with self._lock:
            self._cache.pop(population.tenant, None)
        return path

    def load(self, tenant: str) -> Population | None:
        path = self.path(tenant)
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return None
        with self._lock:
            cached = self._cache.get(tenant)
            if cached is not None and cached[0] == mtime:
                return cached[1]
        population = Population.from_json(json.loads(path.read_text()))
        with self._lock:
            self._cache[tenant] = (mtime, population)
        return population

    def forget(self, tenant: str, subjects: Iterable[str]) -> int:
        """Drop the subjects' batch scores and cluster memberships (erasure); returns how many
        were dropped."""
        population = self.load(tenant)
        if population is None:
            return 0
        members = population.clusters.get("members", {})
        dropped = [s for s in subjects
                   if (population.scores.pop(s, None) is not None)
                   | (members.pop(s, None) is not None)]
        if dropped:
            self.save(population)
        return len(dropped)
