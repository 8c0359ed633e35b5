"""Automatic clusters of people on behavioural features, with a generated RU / EN description of
what distinguishes each and stable identities across refits.

- **Features** per person with activity before the cut (events of any kind but impressions):
  recency (days since the last activity), purchase days, log spend, log spend per purchase day,
  tenure (days since first seen), share of activity in the evening (18:00-24:00 UTC), share on
  weekends, events per active day. Standardised (z-scores) before clustering.
- **Method and number**: k-means (scikit-learn, ``n_init=4``, seeded) for k = 2..8; the k with the
  best silhouette score (on at most 3,000 people, seeded) is kept. Clusters need the ``train``
  extra (the batch job); serving only reads the result.
- **Description**: the two features whose cluster mean differs most from everyone's (in standard
  deviations), each as a ratio to the average ("2.4x more purchase days than average").
- **Stable identities**: a refit's clusters are matched to the previous fit's by the Hungarian
  algorithm on the distance between centroids (in the previous fit's standard units); matched
  clusters keep their ids, new ones get fresh ids. The agreement with the previous fit is the
  share of people in both fits whose cluster id stayed the same.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np

from personify.domain.events import Event
from personify.insights.history import PURCHASE, event_amount

FEATURES: tuple[str, ...] = (
    "recency_days", "purchase_days", "log_spend", "log_spend_per_day", "tenure_days",
    "evening_share", "weekend_share", "events_per_day",
)
NAMES_EN = {
    "recency_days": "days since the last activity", "purchase_days": "purchase days",
    "log_spend": "spend", "log_spend_per_day": "spend per purchase day",
    "tenure_days": "tenure", "evening_share": "evening activity (18-24 UTC)",
    "weekend_share": "weekend activity", "events_per_day": "events per active day",
}
NAMES_RU = {
    "recency_days": "дней с последней активности", "purchase_days": "дней с покупками",
    "log_spend": "сумма покупок", "log_spend_per_day": "сумма за день покупок",
    "tenure_days": "стаж", "evening_share": "активность вечером (18-24 UTC)",
    "weekend_share": "активность в выходные", "events_per_day": "событий за активный день",
}
LOGGED = frozenset({"log_spend", "log_spend_per_day"})
K_RANGE = range(2, 9)
MIN_PEOPLE = 50
SAMPLE = 3_000
SEED = 0


def person_features(events: Iterable[Event], now: datetime) -> dict[str, list[float]]:
    """One feature row (in :data:`FEATURES` order) per person with activity up to ``now``."""
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    days: dict[str, set[Any]] = defaultdict(set)
    active: dict[str, set[Any]] = defaultdict(set)
    spend: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    evening: dict[str, int] = defaultdict(int)
    weekend: dict[str, int] = defaultdict(int)
    for e in events:
        if e.user_id is None or e.type == "impression" or e.timestamp > now:
            continue
        u, ts = e.user_id, e.timestamp
        first[u] = min(first.get(u, ts), ts)
        last[u] = max(last.get(u, ts), ts)
        count[u] += 1
        active[u].add(ts.date())
        evening[u] += ts.hour >= 18
        weekend[u] += ts.weekday() >= 5
        if e.type == PURCHASE:
            days[u].add(ts.date())
            spend[u] += event_amount(e)
    out: dict[str, list[float]] = {}
    for u, n in count.items():
        d = len(days[u])
        out[u] = [
            (now - last[u]).total_seconds() / 86_400, float(d), math.log1p(spend[u]),
            math.log1p(spend[u] / d) if d else 0.0, (now - first[u]).total_seconds() / 86_400,
            evening[u] / n, weekend[u] / n, n / max(len(active[u]), 1),
        ]
    return out


def _describe(centroid: np.ndarray, mean: np.ndarray, std: np.ndarray,
              raw_mean: np.ndarray, raw_centroid: np.ndarray) -> dict[str, str]:
    z = (centroid - mean) / std
    top = np.argsort(-np.abs(z))[:2]
    en, ru = [], []
    for i in top:
        name = FEATURES[i]
        a, b = float(raw_centroid[i]), float(raw_mean[i])
        if name in LOGGED:
            a, b = math.expm1(a), math.expm1(b)
        ratio = a / b if b > 0 else math.inf
        if ratio >= 1:
            en.append(f"{ratio:.1f}x more {NAMES_EN[name]} than average")
            ru.append(f"{NAMES_RU[name]}: в {ratio:.1f} раза больше среднего")
        else:
            en.append(f"{1 / ratio if ratio > 0 else math.inf:.1f}x less {NAMES_EN[name]} than "
                      "average")
            ru.append(f"{NAMES_RU[name]}: в {1 / ratio if ratio > 0 else math.inf:.1f} раза "
                      "меньше среднего")
    return {"en": "; ".join(en), "ru": "; ".join(ru)}


def fit_clusters(rows: Mapping[str, list[float]], previous: Mapping[str, Any] | None = None,
                 ) -> dict[str, Any]:
    """The clustering (see the module doc) as the JSON the population artefact keeps."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    people = sorted(rows)
    if len(people) < MIN_PEOPLE:
        return {"fitted": False,
                "reason": f"clusters need at least {MIN_PEOPLE} people with activity"}
    x_raw = np.asarray([rows[p] for p in people], dtype=np.float64)
    mean, std = x_raw.mean(axis=0), x_raw.std(axis=0)
    std[std == 0] = 1.0
    x = (x_raw - mean) / std
    rng = np.random.default_rng(SEED)
    sample = rng.choice(len(x), size=min(SAMPLE, len(x)), replace=False)
    tried: dict[int, float] = {}
    best: tuple[float, int, Any] | None = None
    distinct = len(np.unique(x, axis=0))
    if distinct < 2:
        return {"fitted": False, "reason": "everyone behaves the same: no clusters"}
    for k in K_RANGE:
        if k > distinct:
            break
        model = KMeans(n_clusters=k, n_init=4, random_state=SEED).fit(x)
        if len(set(model.labels_[sample].tolist())) < 2:
            continue
        score = float(silhouette_score(x[sample], model.labels_[sample]))
        tried[k] = round(score, 4)
        if best is None or score > best[0]:
            best = (score, k, model)
    if best is None:
        return {"fitted": False, "reason": "no clustering separated the people"}
    score, k, model = best
    labels = model.labels_
    centroids = model.cluster_centers_
    raw_centroids = centroids * std + mean
    # stable identities: match to the previous fit's centroids (in its standard units)
    ids = [f"c{i + 1}" for i in range(k)]
    agreement = None
    if previous and previous.get("fitted"):
        prev_raw = np.asarray([c["centroid"] for c in previous["clusters"]], dtype=np.float64)
        prev_std = np.asarray(previous["std"], dtype=np.float64)
        cost = np.linalg.norm(
            (raw_centroids[:, None, :] - prev_raw[None, :, :]) / prev_std, axis=2)
        r, c = linear_sum_assignment(cost)
        prev_ids = [cl["id"] for cl in previous["clusters"]]
        taken = {prev_ids[j] for j in c}
        fresh = (f"c{n}" for n in range(1, 10_000) if f"c{n}" not in taken
                 and f"c{n}" not in prev_ids)
        ids = [""] * k
        for i, j in zip(r, c, strict=True):
            ids[i] = prev_ids[j]
        ids = [i if i else next(fresh) for i in ids]
        before = previous.get("members", {})
        both = [p for p in people if p in before]
        if both:
            position = {p: n for n, p in enumerate(people)}
            agreement = round(sum(ids[labels[position[p]]] == before[p] for p in both)
                              / len(both), 4)
    clusters = []
    for i in range(k):
        size = int((labels == i).sum())
        clusters.append({
            "id": ids[i], "size": size, "share": round(size / len(people), 4),
            "centroid": [round(float(v), 6) for v in raw_centroids[i]],
            "description": _describe(centroids[i], np.zeros(len(FEATURES)), np.ones(len(FEATURES)),
                                     mean, raw_centroids[i]),
        })
    clusters.sort(key=lambda c: str(c["id"]))
    return {
        "fitted": True, "method": "k-means on standardised behavioural features",
        "criterion": "silhouette (k = 2..8)", "k": k, "silhouette": round(score, 4),
        "silhouette_by_k": tried, "features": list(FEATURES),
        "mean": [float(v) for v in mean], "std": [float(v) for v in std],
        "clusters": clusters, "members": {p: ids[labels[n]] for n, p in enumerate(people)},
        "agreement_with_previous": agreement, "people": len(people),
    }
