"""Hyper-parameter search with Optuna on a validation split carved from train.

Test data is never passed in: ``tune`` receives only the training interactions and splits them
itself (or takes a ready validation ``Split`` made from train).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from personify.algorithms import create_model
from personify.data.interactions import Interactions
from personify.data.splits import Split, validation_split
from personify.domain.errors import InvalidInput, Unavailable
from personify.evaluation.protocol import evaluate

SpaceFn = Callable[[Any], dict[str, Any]]
"""Given an ``optuna.Trial``, return the parameters to try."""


def _ease(t: Any) -> dict[str, Any]:
    return {"l2": t.suggest_float("l2", 10.0, 5000.0, log=True)}


def _itemknn(t: Any) -> dict[str, Any]:
    return {"k": t.suggest_int("k", 10, 1000, log=True),
            "shrink": t.suggest_float("shrink", 0.0, 200.0),
            "similarity": "asymmetric", "alpha": t.suggest_float("alpha", 0.0, 1.0)}


def _rp3beta(t: Any) -> dict[str, Any]:
    return {"k": t.suggest_int("k", 10, 1000, log=True),
            "alpha": t.suggest_float("alpha", 0.2, 1.5),
            "beta": t.suggest_float("beta", 0.0, 1.0)}


def _als(t: Any) -> dict[str, Any]:
    return {"factors": t.suggest_categorical("factors", [32, 64, 128, 256]),
            "regularization": t.suggest_float("regularization", 1e-3, 10.0, log=True),
            "alpha": t.suggest_float("alpha", 0.5, 50.0, log=True),
            "iterations": t.suggest_int("iterations", 5, 25)}


def _gfcf(t: Any) -> dict[str, Any]:
    return {"alpha": t.suggest_float("alpha", 0.0, 1.0),
            "n_factors": t.suggest_categorical("n_factors", [64, 128, 256, 512])}


def _popularity(t: Any) -> dict[str, Any]:
    return {"binary": t.suggest_categorical("binary", [True, False])}


SEARCH_SPACES: dict[str, SpaceFn] = {
    "ease": _ease, "itemknn": _itemknn, "rp3beta": _rp3beta, "als": _als, "gfcf": _gfcf,
    "popularity": _popularity,
}


@dataclass
class TuningResult:
    model: str
    best_params: dict[str, Any]
    best_value: float
    metric: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def tune(
    model: str,
    train: Interactions,
    *,
    space: SpaceFn | None = None,
    fixed: Mapping[str, Any] | None = None,
    metric: str = "ndcg@20",
    n_trials: int = 30,
    time_budget_seconds: float = 600.0,
    validation: Split | None = None,
    validation_fraction: float = 0.2,
    seed: int = 0,
    batch_size: int = 1024,
) -> TuningResult:
    """Search ``model``'s parameters maximising ``metric`` on a validation split of ``train``.

    Stops after ``n_trials`` or ``time_budget_seconds`` (whichever first); the best parameters
    are then meant to be refitted on the whole of ``train`` and evaluated once on test.
    """
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise Unavailable("tuning needs Optuna", field="tune",
                          accepted="pip install 'personify[train]'") from exc
    space = space or SEARCH_SPACES.get(model)
    if space is None:
        raise InvalidInput(f"no search space for {model!r}", field="model",
                           accepted=", ".join(sorted(SEARCH_SPACES)) + " or pass space=")
    name, _, k = metric.partition("@")
    if not k.isdigit():
        raise InvalidInput(f"bad metric {metric!r}", field="metric", accepted="e.g. ndcg@20")
    fit_part, valid = validation or validation_split(train, validation_fraction, seed=seed)
    trials: list[dict[str, Any]] = []

    def objective(trial: Any) -> float:
        params = {**space(trial), **dict(fixed or {})}
        start = time.perf_counter()
        fitted = create_model(model, **params).fit(fit_part)
        value = evaluate(fitted, fit_part, valid, (int(k),), batch_size=batch_size)[metric]
        trials.append({"params": params, metric: value,
                       "seconds": time.perf_counter() - start})
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    start = time.perf_counter()
    study.optimize(objective, n_trials=n_trials, timeout=time_budget_seconds)
    best = max(trials, key=lambda row: row[metric])
    return TuningResult(model, dict(best["params"]), float(best[metric]), metric, trials,
                        time.perf_counter() - start)
