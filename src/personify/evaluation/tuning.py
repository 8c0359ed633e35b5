"""Hyper-parameter search with Optuna on a validation split carved from train.

Test data is never passed in: ``tune`` receives only the training interactions and splits them
itself (or takes a ready validation ``Split`` made from train).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from personify.algorithms import create_model
from personify.algorithms.base import Recommender
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
    # iALS wants far more regularisation than 1e-3..10 on many datasets (Rendle et al. 2022)
    return {"factors": t.suggest_categorical("factors", [32, 64, 128, 256]),
            "regularization": t.suggest_float("regularization", 1e-2, 1e3, log=True),
            "alpha": t.suggest_float("alpha", 0.5, 50.0, log=True),
            "iterations": t.suggest_int("iterations", 5, 25),
            "weight_transform": t.suggest_categorical("weight_transform",
                                                      ["none", "log", "cap"])}


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
    _, _, k = metric.partition("@")
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


def blend_weight_search(
    components: Sequence[Recommender],
    fit_part: Interactions,
    valid: Interactions,
    weight_grid: Sequence[Sequence[float]],
    *,
    k: int = 20,
    normalize: str = "max",
    batch_size: int = 1024,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """NDCG@k / Recall@k on ``valid`` of every weight vector in ``weight_grid`` for a blend of
    already-fitted ``components`` (fitted on ``fit_part``): one scoring pass, so a large grid
    costs little more than one evaluation. Returns rows sorted best NDCG first."""
    import numpy as np
    import scipy.sparse as sp

    from personify.algorithms.base import top_n
    from personify.algorithms.blend import normalize_rows
    from personify.evaluation import metrics

    valid_m = sp.csr_matrix((sp.csr_matrix(valid.matrix) > 0).astype(np.float32))
    train_m = sp.csr_matrix(fit_part.matrix)
    n_rel_all = np.diff(valid_m.indptr)
    users = np.flatnonzero(n_rel_all > 0)
    grid = [tuple(float(w) for w in weights) for weights in weight_grid]
    if any(len(w) != len(components) for w in grid):
        raise InvalidInput("each weight vector needs one weight per component",
                           field="weight_grid", accepted=f"{len(components)} floats")
    ndcg_sum = np.zeros(len(grid))
    recall_sum = np.zeros(len(grid))
    for lo in range(0, len(users), batch_size):
        batch = users[lo : lo + batch_size]
        parts = [normalize_rows(c.score(batch), normalize) for c in components]
        exclude = train_m[batch]
        relevant = valid_m[batch]
        n_rel = n_rel_all[batch]
        for g, weights in enumerate(grid):
            scores = np.zeros_like(parts[0])
            for weight, part in zip(weights, parts, strict=True):
                if weight:
                    scores += np.float32(weight) * part
            ids, _ = top_n(scores, k, exclude=exclude)
            hits = metrics.hit_matrix(ids, relevant)
            ndcg_sum[g] += metrics.ndcg(hits, n_rel, k).sum()
            recall_sum[g] += metrics.recall(hits, n_rel, k).sum()
        if progress is not None:
            progress(min(lo + batch_size, len(users)), len(users))
    n = max(len(users), 1)
    rows = [{"weights": list(w), f"ndcg@{k}": ndcg_sum[g] / n, f"recall@{k}": recall_sum[g] / n}
            for g, w in enumerate(grid)]
    return sorted(rows, key=lambda row: -row[f"ndcg@{k}"])
