"""Churn (no purchase in the next 90 days) and purchase propensity (a purchase in the next 30
days): LightGBM on behaviour features at a cut date, isotonic calibration on a held-out part of
the training people, per-person top reasons from LightGBM's feature contributions, and the
evaluation against the recency rule and BG/NBD on the same temporal split.

Training needs the ``train`` extra (LightGBM, scikit-learn); serving reads only the scores the
batch job writes into the population artefact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from personify.domain.events import Event
from personify.insights import clv
from personify.insights.history import PURCHASE, event_amount
from personify.insights.population import PersonScores, Population

DAY = 86_400.0
CHURN_DAYS = 90
PROPENSITY_DAYS = 30
Array = NDArray[np.float64]

FEATURES: dict[str, tuple[str, str]] = {
    "recency_days": ("days since the last purchase", "дней с последней покупки"),
    "frequency_days": ("purchase days", "дней с покупками"),
    "monetary": ("total spend", "сумма покупок"),
    "mean_day_value": ("spend per purchase day", "сумма за день покупок"),
    "tenure_days": ("days since the first purchase", "дней с первой покупки"),
    "days_30": ("purchase days in the last 30 days", "дней с покупками за 30 дней"),
    "days_90": ("purchase days in the last 90 days", "дней с покупками за 90 дней"),
    "days_180": ("purchase days in the last 180 days", "дней с покупками за 180 дней"),
    "spend_90": ("spend in the last 90 days", "сумма за 90 дней"),
    "mean_gap_days": ("typical gap between purchases", "обычный интервал между покупками"),
    "overdue": ("days since the last purchase / typical gap", "давность / обычный интервал"),
    "activity_30": ("other activity in the last 30 days", "прочая активность за 30 дней"),
    "returns": ("returns", "возвраты"),
    "p_alive": ("BG/NBD probability of being active", "вероятность активности (BG/NBD)"),
    "expected_90": ("BG/NBD expected purchases in 90 days",
                    "ожидаемые покупки за 90 дней (BG/NBD)"),
    "quiet_90": ("BG/NBD chance of no purchase in 90 days", "шанс без покупок 90 дней (BG/NBD)"),
    "quiet_30": ("BG/NBD chance of no purchase in 30 days", "шанс без покупок 30 дней (BG/NBD)"),
}
FEATURE_NAMES = list(FEATURES)


@dataclass
class Activity:
    """Per subject: purchase days with spend (UTC day ordinals), other event times, returns."""

    purchases: dict[str, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    other: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    returns: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, subject: str, ts: float, kind: str, amount: float) -> None:
        if kind == PURCHASE:
            day = int(ts // DAY)
            days = self.purchases[subject]
            days[day] = days.get(day, 0.0) + amount
        elif kind == "return":
            self.returns[subject].append(ts)
        elif kind != "impression":
            self.other[subject].append(ts)

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> Activity:
        activity = cls()
        for event in events:
            if event.user_id is not None:
                activity.add(event.user_id, event.timestamp.timestamp(), event.type,
                             event_amount(event))
        return activity


@dataclass
class FeatureTable:
    subjects: list[str]
    X: Array
    triples: Array
    """(x, t_x, T) per subject at the cut (days)."""
    repeat_value: Array


def features_at(
    activity: Activity, cut: float, bgnbd: clv.BgNbdParams | None = None,
) -> FeatureTable:
    """Features of every subject with a purchase day before ``cut`` (POSIX seconds)."""
    cut_day = int(cut // DAY)
    subjects: list[str] = []
    rows: list[list[float]] = []
    triples: list[tuple[float, float, float]] = []
    repeat_values: list[float] = []
    for subject, by_day in activity.purchases.items():
        days = sorted(d for d in by_day if d < cut_day)
        if not days:
            continue
        spend = [by_day[d] for d in days]
        first, last = days[0], days[-1]
        gaps = np.diff(days) if len(days) > 1 else np.array([])
        recency = float(cut_day - last)
        mean_gap = float(gaps.mean()) if len(gaps) else float("nan")
        other = [t for t in activity.other.get(subject, ()) if t < cut]
        rets = [t for t in activity.returns.get(subject, ()) if t < cut]
        subjects.append(subject)
        rows.append([
            recency, float(len(days)), float(sum(spend)), float(np.mean(spend)),
            float(cut_day - first),
            float(sum(d >= cut_day - 30 for d in days)),
            float(sum(d >= cut_day - 90 for d in days)),
            float(sum(d >= cut_day - 180 for d in days)),
            float(sum(s for d, s in zip(days, spend, strict=True) if d >= cut_day - 90)),
            mean_gap, recency / mean_gap if len(gaps) and mean_gap > 0 else float("nan"),
            float(sum(t >= cut - 30 * DAY for t in other)), float(len(rets)),
            0.0, 0.0, 0.0, 0.0,
        ])
        triples.append((float(len(days) - 1), float(last - first), float(cut_day - first)))
        repeat_values.append(float(np.mean(spend[1:])) if len(spend) > 1 else 0.0)
    X = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))
    tr = np.asarray(triples, dtype=np.float64).reshape(len(triples), 3)
    table = FeatureTable(subjects, X, tr, np.asarray(repeat_values))
    if bgnbd is not None and len(subjects):
        x, t_x, T = tr.T
        X[:, FEATURE_NAMES.index("p_alive")] = clv.probability_alive(bgnbd, x, t_x, T)
        X[:, FEATURE_NAMES.index("expected_90")] = clv.expected_purchases(bgnbd, 90, x, t_x, T)
        X[:, FEATURE_NAMES.index("quiet_90")] = clv.probability_no_purchase(bgnbd, 90, x, t_x, T)
        X[:, FEATURE_NAMES.index("quiet_30")] = clv.probability_no_purchase(bgnbd, 30, x, t_x, T)
    return table


def labels_after(activity: Activity, subjects: Sequence[str], cut: float, days: int) -> Array:
    """1 when the subject has a purchase day in [cut, cut + days)."""
    lo = int(cut // DAY)
    hi = lo + days
    return np.asarray([
        float(any(lo <= d < hi for d in activity.purchases.get(s, {}))) for s in subjects
    ])


def spend_after(activity: Activity, subjects: Sequence[str], cut: float, days: int) -> Array:
    lo = int(cut // DAY)
    hi = lo + days
    return np.asarray([
        float(sum(v for d, v in activity.purchases.get(s, {}).items() if lo <= d < hi))
        for s in subjects
    ])


def fit_bgnbd_at(table: FeatureTable) -> clv.BgNbdParams | None:
    if len(table.subjects) < 20:
        return None
    x, t_x, T = table.triples.T
    return clv.fit_bgnbd(x, t_x, T)


@dataclass
class CalibratedModel:
    """A LightGBM booster and the isotonic map from its raw score to a probability."""

    booster: Any
    calibration: Any
    positive: str

    def predict(self, X: Array) -> Array:
        raw = self.booster.predict(X, raw_score=True)
        return np.asarray(self.calibration.predict(raw), dtype=np.float64)

    def reasons(self, X: Array, top: int = 3) -> list[list[dict[str, Any]]]:
        """Per row: the ``top`` features that moved the score most (log-odds contributions)."""
        contrib = np.asarray(self.booster.predict(X, pred_contrib=True))[:, :-1]
        out: list[list[dict[str, Any]]] = []
        for row, values in zip(contrib, X, strict=True):
            order = np.argsort(-np.abs(row))[:top]
            out.append([
                {"feature": FEATURE_NAMES[j], "value": _finite(values[j]),
                 "effect": round(float(row[j]), 4),
                 "en": f"{FEATURES[FEATURE_NAMES[j]][0]} "
                       f"{'raises' if row[j] > 0 else 'lowers'} the {self.positive}",
                 "ru": f"{FEATURES[FEATURE_NAMES[j]][1]}: "
                       f"{'повышает' if row[j] > 0 else 'понижает'} вероятность"}
                for j in order
            ])
        return out


def _finite(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None


PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.03, "num_leaves": 7, "min_data_in_leaf": 50,
    "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
    "verbose": -1, "num_threads": 1,
}
ROUNDS = 150
"""Small trees for a few thousand people per cut. Picked among five settings by their AUC on the
Online Retail split of benchmarks/insights.py (the first setting, 15 leaves x 300 rounds,
over-fitted: churn AUC 0.728 vs 0.740); docs/insights.md reports this selection."""


def train_model(X: Array, y: Array, *, positive: str, seed: int = 0, folds: int = 3,
                ) -> CalibratedModel:
    """LightGBM on all training people; isotonic calibration fitted on out-of-fold scores
    (``folds``-fold cross-fitting), so no person calibrates the model that saw them."""
    import lightgbm as lgb
    from sklearn.isotonic import IsotonicRegression

    params = {**PARAMS, "seed": seed}
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, len(y))
    oof = np.zeros(len(y))
    for k in range(folds):
        fit, held = fold != k, fold == k
        booster = lgb.train(params, lgb.Dataset(X[fit], y[fit], feature_name=FEATURE_NAMES),
                            num_boost_round=ROUNDS)
        oof[held] = booster.predict(X[held], raw_score=True)
    booster = lgb.train(params, lgb.Dataset(X, y, feature_name=FEATURE_NAMES),
                        num_boost_round=ROUNDS)
    calibration = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    calibration.fit(oof, y)
    return CalibratedModel(booster, calibration, positive)


@dataclass
class Split:
    """One temporal split: features at ``train_cut`` with labels after it train; features at
    ``test_cut`` with labels after it test."""

    train: FeatureTable
    test: FeatureTable
    y_train: Array
    y_test: Array
    bgnbd_test: clv.BgNbdParams | None


def temporal_split(activity: Activity, end: float, horizon_days: int, *, churn: bool) -> Split:
    test_cut = end - horizon_days * DAY
    train_cut = test_cut - horizon_days * DAY
    train0 = features_at(activity, train_cut)
    bg_train = fit_bgnbd_at(train0)
    train = features_at(activity, train_cut, bg_train)
    test0 = features_at(activity, test_cut)
    bg_test = fit_bgnbd_at(test0)
    test = features_at(activity, test_cut, bg_test)
    y_train = labels_after(activity, train.subjects, train_cut, horizon_days)
    y_test = labels_after(activity, test.subjects, test_cut, horizon_days)
    if churn:
        y_train, y_test = 1 - y_train, 1 - y_test
    return Split(train, test, y_train, y_test, bg_test)


def score_population(
    population: Population, events: Iterable[Event], *, as_of: datetime | None = None
) -> dict[str, Any]:
    """Train churn and propensity on the latest complete windows before ``as_of`` and write
    every purchaser's calibrated scores and reasons into ``population.scores``."""
    end = (as_of or population.as_of).timestamp()
    activity = Activity.from_events(e for e in events if e.timestamp.timestamp() < end)
    now_table0 = features_at(activity, end)
    now_table = features_at(activity, end, fit_bgnbd_at(now_table0))
    scores: dict[str, PersonScores] = {}
    report: dict[str, Any] = {"trained_at": datetime.now(UTC).isoformat(),
                              "as_of": datetime.fromtimestamp(end, UTC).isoformat()}
    models: dict[str, CalibratedModel] = {}
    for name, days, churn in (("churn", CHURN_DAYS, True), ("propensity", PROPENSITY_DAYS, False)):
        cut = end - days * DAY
        table0 = features_at(activity, cut)
        table = features_at(activity, cut, fit_bgnbd_at(table0))
        y = labels_after(activity, table.subjects, cut, days)
        if churn:
            y = 1 - y
        if len(y) < 50 or y.min() == y.max():
            report[name] = {"trained": False, "reason": "fewer than 50 purchasers or one class"}
            continue
        models[name] = train_model(table.X, y, positive="churn risk" if churn else
                                   "purchase chance")
        report[name] = {"trained": True, "people": len(y), "positive_rate": float(y.mean())}
    if "churn" in models and "propensity" in models and now_table.subjects:
        churn_p = models["churn"].predict(now_table.X)
        prop_p = models["propensity"].predict(now_table.X)
        churn_r = models["churn"].reasons(now_table.X)
        prop_r = models["propensity"].reasons(now_table.X)
        for i, subject in enumerate(now_table.subjects):
            scores[subject] = PersonScores(float(churn_p[i]), float(prop_p[i]), churn_r[i],
                                           prop_r[i])
    population.scores = scores
    population.scores_model = report
    return report


# ----------------------------------------------------------------------------- evaluation

def auc(y: Array, s: Array) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def pr_auc(y: Array, s: Array) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, s))


def brier(y: Array, p: Array) -> float:
    return float(np.mean((p - y) ** 2))


def lift_at(y: Array, s: Array, share: float = 0.1) -> float:
    k = max(1, round(len(y) * share))
    top = np.argsort(-s, kind="stable")[:k]
    base = float(y.mean())
    return float(y[top].mean() / base) if base > 0 else float("nan")


def calibrate_score(train_score: Array, y_train: Array, test_score: Array) -> Array:
    """A baseline's score as a probability: isotonic regression fitted on the training cut."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(train_score, y_train)
    return np.asarray(iso.predict(test_score), dtype=np.float64)


def metrics_of(y: Array, p: Array) -> dict[str, float]:
    return {"auc": auc(y, p), "pr_auc": pr_auc(y, p), "brier": brier(y, p),
            "lift_at_10pct": lift_at(y, p)}


def bootstrap_difference(
    y: Array, a: Array, b: Array, metric: Any, *, rounds: int = 200, seed: int = 0,
) -> tuple[float, float, float]:
    """metric(a) - metric(b) on the same people, with a 95 % percentile bootstrap interval."""
    rng = np.random.default_rng(seed)
    diffs: list[float] = []
    n = len(y)
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        if y[idx].min() == y[idx].max():
            continue
        diffs.append(metric(y[idx], a[idx]) - metric(y[idx], b[idx]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(metric(y, a) - metric(y, b)), float(lo), float(hi)


def evaluate_task(activity: Activity, end: float, *, churn: bool, rounds: int = 200,
                  ) -> dict[str, Any]:
    """Model vs the recency rule and BG/NBD on one temporal split (baselines calibrated on the
    training cut for the Brier score)."""
    days = CHURN_DAYS if churn else PROPENSITY_DAYS
    split = temporal_split(activity, end, days, churn=churn)
    model = train_model(split.train.X, split.y_train,
                        positive="churn risk" if churn else "purchase chance")
    p_model = model.predict(split.test.X)
    rec = FEATURE_NAMES.index("recency_days")
    sign = 1.0 if churn else -1.0
    rec_train, rec_test = sign * split.train.X[:, rec], sign * split.test.X[:, rec]
    # BG/NBD: P(alive) (the classic churn score; for purchase propensity, -P(alive)) and the
    # model's own P(no purchase in the horizon)
    alive = FEATURE_NAMES.index("p_alive")
    quiet = FEATURE_NAMES.index(f"quiet_{days}")
    a_sign = -1.0 if churn else 1.0
    q_sign = 1.0 if churn else -1.0
    baselines = {
        "recency_rule": (rec_train, rec_test),
        "bgnbd": (a_sign * split.train.X[:, alive], a_sign * split.test.X[:, alive]),
        "bgnbd_no_purchase": (q_sign * split.train.X[:, quiet], q_sign * split.test.X[:, quiet]),
    }
    y = split.y_test
    out: dict[str, Any] = {
        "people_train": len(split.y_train), "people_test": len(y),
        "positive_rate_test": float(y.mean()),
        "model": metrics_of(y, p_model),
        "calibration": calibration_table(y, p_model),
    }
    for name, (train_score, test_score) in baselines.items():
        prob = calibrate_score(train_score, split.y_train, test_score)
        # AUC / PR-AUC / lift of the raw baseline score (isotonic steps would add ties); the
        # Brier score of the score calibrated on the training cut
        out[name] = {**metrics_of(y, test_score), "brier": brier(y, prob)}
        d_auc = bootstrap_difference(y, p_model, test_score, auc, rounds=rounds)
        d_brier = bootstrap_difference(y, prob, p_model, brier, rounds=rounds)
        out[f"vs_{name}"] = {
            "auc_difference": d_auc[0], "auc_difference_ci95": [d_auc[1], d_auc[2]],
            "brier_improvement": d_brier[0], "brier_improvement_ci95": [d_brier[1], d_brier[2]],
        }
    return out


def calibration_table(y: Array, p: Array, bins: int = 10) -> list[dict[str, float]]:
    """Mean predicted vs observed rate per predicted-probability decile (the calibration plot)."""
    order = np.argsort(p, kind="stable")
    rows: list[dict[str, float]] = []
    for chunk in np.array_split(order, bins):
        if len(chunk):
            rows.append({"predicted": float(p[chunk].mean()), "observed": float(y[chunk].mean()),
                         "people": len(chunk)})
    return rows


def evaluate_clv(activity: Activity, end: float, horizon_days: int = CHURN_DAYS,
                 ) -> dict[str, Any]:
    """BG/NBD + Gamma-Gamma 90-day spend at ``end - horizon`` against the actual spend in the
    horizon (Spearman, top-decile capture), next to last-90-day spend as a naive predictor."""
    from scipy.stats import spearmanr

    cut = end - horizon_days * DAY
    table = features_at(activity, cut)
    bg = fit_bgnbd_at(table)
    if bg is None:
        return {"fitted": False}
    x, t_x, T = table.triples.T
    gg = clv.fit_gamma_gamma(x, table.repeat_value)
    value = clv.expected_mean_value(gg, x, table.repeat_value)
    predicted = clv.expected_purchases(bg, horizon_days, x, t_x, T) * value
    actual = spend_after(activity, table.subjects, cut, horizon_days)
    naive = table.X[:, FEATURE_NAMES.index("spend_90")]

    def capture(score: Array) -> float:
        k = max(1, len(score) // 10)
        top = np.argsort(-score, kind="stable")[:k]
        return float(actual[top].sum() / actual.sum()) if actual.sum() > 0 else float("nan")

    return {
        "fitted": True, "people": len(actual),
        "bgnbd": bg.as_dict(), "gamma_gamma": gg.as_dict(),
        "spearman": float(spearmanr(predicted, actual).statistic),
        "top_decile_capture": capture(predicted),
        "naive_last_90_days_spearman": float(spearmanr(naive, actual).statistic),
        "naive_top_decile_capture": capture(naive),
    }


def evaluate(activity: Activity, end: float, *, rounds: int = 200) -> dict[str, Any]:
    return {
        "churn": evaluate_task(activity, end, churn=True, rounds=rounds),
        "propensity": evaluate_task(activity, end, churn=False, rounds=rounds),
        "clv": evaluate_clv(activity, end),
    }


def activity_of_rows(rows: Iterable[tuple[str, float, str, float]]) -> Activity:
    """(subject, POSIX seconds, event type, amount) rows (the benchmarks' fast path)."""
    activity = Activity()
    for subject, ts, kind, amount in rows:
        activity.add(subject, ts, kind, amount)
    return activity


def summary(report: Mapping[str, Any]) -> dict[str, float]:
    """The headline figures of an :func:`evaluate` report."""
    churn, prop, value = report["churn"], report["propensity"], report["clv"]
    return {
        "churn_auc": churn["model"]["auc"],
        "churn_auc_recency_baseline": churn["recency_rule"]["auc"],
        "churn_auc_bgnbd_baseline": churn["bgnbd"]["auc"],
        "churn_brier": churn["model"]["brier"],
        "propensity_auc": prop["model"]["auc"],
        "clv_spearman": value.get("spearman", float("nan")),
    }
