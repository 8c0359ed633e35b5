"""Choosing and tuning the served configuration on the deployment's own events.

``select_configuration(data, budget_seconds=...)`` is what ``personify train`` (and
``personify evaluate`` on a CSV) runs:

1. a validation split carved from the training events by the protocol that fits them
   (``personify.data.splits.choose_validation``: each person's latest items when timestamps
   order their events, a random share of their items otherwise);
2. the candidates: every user model of the package that fits the catalogue and the memory
   budget (:func:`candidate_models`), each searched by Optuna (TPE) within its share of the time
   budget, its registry defaults tried first; a trial is scored on a subsample of the validation
   people first and promoted to the full set only when it beats the median of earlier trials
   there (Optuna's median pruner), so weak settings cost a fraction of a full evaluation;
   each candidate's first trial runs while time is left (its defaults are always measured
   then); once the budget is spent the remaining candidates are skipped and named in the
   table, so the selection overruns its budget by at most the trial that was running;
3. the choice by validation NDCG@20 with the one-standard-error rule: among the fully evaluated
   trials whose NDCG is within one standard error of the best (paired over the same people),
   the cheapest (fit + scoring seconds) — differences inside that band are noise of the
   validation sample;
4. the neighbour model (the item x item matrix the ``collaborative`` source folds live events
   through, and that erasure subtracts exactly) by the same rule among ``rp3beta`` / ``itemknn``
   trials, and the ALS settings of the ``factors`` source from the ALS trials.

The caller refits the chosen configuration on all the training events and learns the blend
weights (``personify.jobs.training.train_bundle``). Every trial (model, parameters, validation
metrics, fit time, memory) goes into the model manifest (``metrics["selection"]``), shown by
``personify models show VERSION``.

A retrain reuses the last chosen configuration (:class:`SelectionPlan`) unless asked to re-tune
or the data changed enough: the positive events, people or items counted at the last tuning grew
or shrank by a factor of :data:`RETUNE_FACTOR` (1.5) or more.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms import create_model
from personify.algorithms.base import Recommender
from personify.algorithms.ease import ease_memory_bytes
from personify.data.interactions import Interactions
from personify.data.splits import choose_validation
from personify.domain.errors import InvalidInput
from personify.evaluation import metrics
from personify.evaluation._resources import peak_rss_mb, reset_peak
from personify.jobs.training import DEFAULT_FACTOR_PARAMS, MAX_FACTORS, TrainingConfig

K = 20
RETUNE_FACTOR = 1.5
"""Re-tune when events, people or items changed by this factor (either way) since tuning."""
NEIGHBOUR_MODELS = ("rp3beta", "itemknn")
"""Models whose item x item matrix the serving chain folds through and erasure subtracts."""
GOWALLA_EVENTS = 810_128
"""Gowalla's training interactions: the scale of the default budget's 10 minutes."""
MIN_BUDGET_SECONDS = 5.0
MAX_BUDGET_SECONDS = 3600.0
MAX_TRIALS_PER_MODEL = 25
"""A model's search stops after this many trials even with time left (small data)."""


def default_budget_seconds(n_events: int) -> float:
    """The selection's time budget scaled to the data: 10 minutes at Gowalla scale (810k
    training events on 2 cores), proportionally less (at least 5 seconds) for smaller data and
    more (at most an hour) for larger."""
    scaled = 600.0 * n_events / GOWALLA_EVENTS
    return float(min(MAX_BUDGET_SECONDS, max(MIN_BUDGET_SECONDS, scaled)))


# --- search spaces: key hyper-parameters, relative to the catalogue where size matters -------

SpaceFn = Callable[[Any, int, int], dict[str, Any]]


def _rank(share: float, n_users: int, n_items: int) -> int:
    return int(max(2, min(round(share * n_items), min(n_users, n_items) - 1, 1024)))


def _ease(t: Any, n_users: int, n_items: int) -> dict[str, Any]:
    return {"l2": t.suggest_float("l2", 1.0, 1e4, log=True)}


def _rp3beta(t: Any, n_users: int, n_items: int) -> dict[str, Any]:
    return {"k": t.suggest_int("k", 10, min(1000, max(10, n_items - 1)), log=True),
            "alpha": t.suggest_float("alpha", 0.2, 1.5),
            "beta": t.suggest_float("beta", 0.0, 0.8)}


def _itemknn(t: Any, n_users: int, n_items: int) -> dict[str, Any]:
    return {"k": t.suggest_int("k", 10, min(1000, max(10, n_items - 1)), log=True),
            "shrink": t.suggest_float("shrink", 0.0, 200.0),
            "similarity": "asymmetric", "alpha": t.suggest_float("alpha", 0.0, 1.0)}


def _als(t: Any, n_users: int, n_items: int) -> dict[str, Any]:
    return {"factors": t.suggest_categorical("factors", [32, 64, 128, 256]),
            "regularization": t.suggest_float("regularization", 1e-2, 1e3, log=True),
            "alpha": t.suggest_float("alpha", 0.5, 50.0, log=True),
            "iterations": 15,
            "weight_transform": t.suggest_categorical("weight_transform",
                                                      ["none", "log", "cap"])}


def _gfcf(t: Any, n_users: int, n_items: int) -> dict[str, Any]:
    share = t.suggest_float("rank_share", 0.002, 0.1, log=True)
    return {"alpha": t.suggest_float("alpha", 0.0, 1.0),
            "n_factors": _rank(share, n_users, n_items)}


def _bspm(t: Any, n_users: int, n_items: int) -> dict[str, Any]:
    share = t.suggest_float("rank_share", 0.002, 0.1, log=True)
    return {"factor_dim": _rank(share, n_users, n_items),
            "idl_beta": t.suggest_float("idl_beta", 0.0, 1.0),
            "T_s": t.suggest_float("T_s", 0.5, 4.0),
            "merge": t.suggest_categorical("merge", ["early", "late"]),
            "solver": "rk4", "T_b": 1.0, "K_b": 1, "K_s": 1}


SPACES: dict[str, SpaceFn] = {
    "rp3beta": _rp3beta, "itemknn": _itemknn, "ease": _ease, "gfcf": _gfcf, "als": _als,
    "bspm": _bspm,
}
"""Cheapest first: the budget is shared out in this order."""


def starting_points(model: str, n_users: int, n_items: int) -> dict[str, Any]:
    """The first trial of each model (Optuna-space values): the registry's defaults, with
    ranks relative to the catalogue (Gowalla's tuned 1.4 % for BSPM, not its absolute 576)."""
    points: dict[str, dict[str, Any]] = {
        "rp3beta": {"k": min(200, max(10, n_items - 1)), "alpha": 0.8, "beta": 0.3},
        "itemknn": {"k": min(100, max(10, n_items - 1)), "shrink": 10.0, "alpha": 0.5},
        "ease": {"l2": 500.0},
        "gfcf": {"rank_share": 0.0062, "alpha": 0.3},
        "als": {"factors": 64, "regularization": 1.0, "alpha": 10.0, "weight_transform": "log"},
        "bspm": {"rank_share": 0.014, "idl_beta": 0.2, "T_s": 2.5, "merge": "early"},
    }
    return points[model]


def candidate_models(
    data: Interactions, memory_budget_gb: float = 8.0
) -> tuple[list[str], dict[str, str]]:
    """The user models that fit this catalogue and memory budget, cheapest first, and why the
    others were left out."""
    n_users, n_items = data.n_users, data.n_items
    budget = memory_budget_gb * 1e9
    x = sp.csr_matrix(data.matrix)
    degrees = np.diff(x.indptr).astype(np.float64)
    skipped: dict[str, str] = {}
    chosen: list[str] = []
    for name in SPACES:
        if name == "ease":
            dense = ease_memory_bytes(n_items, "float32", "auto",
                                      int(np.count_nonzero(degrees)))
            if dense > budget:
                skipped[name] = (f"needs about {dense / 1e9:.1f} GB of dense item x item "
                                 f"matrices for {n_items:,} items, over {memory_budget_gb} GB")
                continue
        if name == "gfcf":
            # the item x item filter is materialised: at most sum(deg^2) entries, 12 bytes each
            need = 12.0 * min(float(n_items) ** 2, float(np.sum(degrees ** 2)))
            if need > budget / 2:
                skipped[name] = f"its item x item filter may need {need / 1e9:.1f} GB"
                continue
        if name == "als" and importlib.util.find_spec("implicit") is None:
            skipped[name] = "the implicit library (the train extra) is not installed"
            continue
        if n_items < 3 or n_users < 3:
            skipped[name] = "fewer than three people or items"
            continue
        chosen.append(name)
    return chosen, skipped


# --- trials ------------------------------------------------------------------------------


@dataclass
class Trial:
    """One row of the selection table."""

    model: str
    params: dict[str, Any]
    status: str
    """``complete`` (scored on every validation person), ``pruned`` (stopped after the
    subsample), ``failed``, ``skipped`` (not measured: the time budget was spent before this
    candidate's turn)."""
    subsample_ndcg: float | None = None
    ndcg: float | None = None
    recall: float | None = None
    se: float | None = None
    fit_seconds: float = 0.0
    score_seconds: float = 0.0
    memory_mb: float = 0.0
    note: str = ""

    @property
    def cost(self) -> float:
        return self.fit_seconds + self.score_seconds


@dataclass
class Selection:
    """What the selection chose and the evidence (serialised into the model manifest)."""

    protocol: str
    reason: str
    user_model: str
    user_params: dict[str, Any]
    neighbour_model: str
    neighbour_params: dict[str, Any]
    factor_params: dict[str, Any] | None
    trials: list[Trial]
    budget_seconds: float
    seconds: float
    validation_users: int
    subsample_users: int
    tuned_on: dict[str, int]
    skipped: dict[str, str] = field(default_factory=dict)
    rule: str = "one-se"
    best: str = ""
    """``model params`` of the best validation NDCG (the one-SE choice may be cheaper)."""
    reused_from: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Selection:
        body = dict(data)
        body["trials"] = [Trial(**row) for row in body.get("trials", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in body.items() if k in known})

    def chosen_trial(self) -> Trial | None:
        for trial in self.trials:
            if trial.note == "chosen":
                return trial
        return None


def _model_params(model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna-space values -> the model's own parameters (ranks are already absolute)."""
    return {k: v for k, v in params.items() if k != "rank_share"}


class _Scorer:
    """Per-person NDCG / recall at ``K`` on the validation people (the protocol's full ranking:
    training items masked)."""

    def __init__(self, fit_part: Interactions, valid: Interactions, users: NDArray[np.int64],
                 batch: int) -> None:
        self.exclude = sp.csr_matrix(fit_part.matrix)
        self.relevant = sp.csr_matrix((sp.csr_matrix(valid.matrix) > 0).astype(np.float32))
        self.n_rel = np.diff(self.relevant.indptr)
        self.users = users
        self.batch = batch

    def __call__(self, model: Recommender, users: NDArray[np.int64]
                 ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        ndcg = np.zeros(users.size, dtype=np.float32)
        recall = np.zeros(users.size, dtype=np.float32)
        for lo in range(0, users.size, self.batch):
            part = users[lo:lo + self.batch]
            ids, _ = model.recommend(part, K, exclude=self.exclude)
            hits = metrics.hit_matrix(ids, self.relevant[part])
            ndcg[lo:lo + part.size] = metrics.ndcg(hits, self.n_rel[part], K)
            recall[lo:lo + part.size] = metrics.recall(hits, self.n_rel[part], K)
        return ndcg, recall


def _rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def one_se_choice(trials: list[Trial], per_user: Mapping[int, NDArray[np.float32]]
                  ) -> tuple[int, int]:
    """(index of the best trial, index of the one-SE choice) among complete trials: the
    cheapest whose mean validation NDCG is within one standard error of the best's, the error
    taken on the per-person differences to the best (the same people score both)."""
    complete = [i for i, t in enumerate(trials) if t.status == "complete" and i in per_user]
    if not complete:
        raise InvalidInput("no trial was evaluated on the validation split", field="selection",
                           accepted="more training events or a larger --budget")
    best = max(complete, key=lambda i: (float(per_user[i].mean()), -trials[i].cost))
    ref = per_user[best].astype(np.float64)
    close = []
    for i in complete:
        diff = ref - per_user[i].astype(np.float64)
        se = float(diff.std(ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else 0.0
        if diff.mean() <= se + 1e-12:
            close.append(i)
    chosen = min(close, key=lambda i: (trials[i].cost, -float(per_user[i].mean())))
    return best, chosen


def select_configuration(
    data: Interactions,
    *,
    budget_seconds: float | None = None,
    memory_budget_gb: float = 8.0,
    models: list[str] | None = None,
    seed: int = 0,
    subsample_users: int | None = None,
    batch_size: int = 1024,
    progress: Callable[[str], None] | None = None,
) -> Selection:
    """Search the candidates on a validation split of ``data`` (see the module docstring) and
    return the chosen configuration with every trial."""
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - depends on the install
        from personify.domain.errors import Unavailable

        raise Unavailable("the selection needs Optuna", field="select",
                          accepted="pip install 'personify[train]'") from exc
    started = time.perf_counter()
    n_events = int(np.count_nonzero(sp.csr_matrix(data.matrix).data > 0))
    budget = float(budget_seconds if budget_seconds is not None
                   else default_budget_seconds(n_events))
    deadline = started + budget
    protocol = choose_validation(data, 0.2, seed=seed)
    fit_part, valid = protocol.split
    users = np.flatnonzero(np.diff(sp.csr_matrix(valid.matrix).indptr) > 0).astype(np.int64)
    if users.size == 0:
        raise InvalidInput("no person has enough events to hold some out for validation",
                           field="events", accepted="people with at least two items")
    rng = np.random.default_rng(seed)
    n_sub = subsample_users if subsample_users is not None else (
        users.size if users.size <= 2000 else max(1000, users.size // 5))
    sub = np.sort(rng.choice(users, min(n_sub, users.size), replace=False))
    scorer = _Scorer(fit_part, valid, users, batch_size)
    names, skipped = candidate_models(data, memory_budget_gb)
    if models is not None:
        unknown = sorted(set(models) - set(SPACES))
        if unknown:
            raise InvalidInput(f"unknown candidate {unknown[0]!r}", field="models",
                               accepted=", ".join(SPACES))
        names = [m for m in names if m in models]
    trials: list[Trial] = []
    per_user: dict[int, NDArray[np.float32]] = {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for position, name in enumerate(names):
        left = deadline - time.perf_counter()
        if left <= 0 and any(t.status == "complete" for t in trials):
            # the budget is spent: the remaining (costlier) candidates are not measured, so a
            # selection overruns its budget by at most one trial, not one trial per candidate
            trials.append(Trial(name, {}, "skipped", note="time budget spent"))
            continue
        share_end = time.perf_counter() + left / (len(names) - position)
        study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        )
        study.enqueue_trial(starting_points(name, fit_part.n_users, fit_part.n_items))
        last_cost = 0.0
        count = 0
        # the first trial always runs (every candidate is measured once); later ones only
        # when another of the same cost still fits this model's share
        while count == 0 or (time.perf_counter() + last_cost <= share_end
                             and count < MAX_TRIALS_PER_MODEL):
            count += 1
            trial = study.ask()
            params = _model_params(name, SPACES[name](trial, fit_part.n_users,
                                                      fit_part.n_items))
            if progress is not None:
                progress(f"{name} {params}")
            row = Trial(name, params, "failed")
            trials.append(row)
            before = _rss_mb()
            reset_peak()
            clock = time.perf_counter()
            try:
                model = create_model(name, **params).fit(fit_part)
                row.fit_seconds = round(time.perf_counter() - clock, 3)
                row.memory_mb = round(max(0.0, peak_rss_mb() - before), 1)
                clock = time.perf_counter()
                sub_ndcg, _ = scorer(model, sub)
                row.subsample_ndcg = float(sub_ndcg.mean())
                trial.report(row.subsample_ndcg, 0)
                if sub.size < users.size and trial.should_prune():
                    row.status = "pruned"
                    row.score_seconds = round(time.perf_counter() - clock, 3)
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    ndcg, recall = scorer(model, users)
                    row.score_seconds = round(time.perf_counter() - clock, 3)
                    row.status = "complete"
                    row.ndcg = float(ndcg.mean())
                    row.recall = float(recall.mean())
                    row.se = float(ndcg.std(ddof=1) / math.sqrt(ndcg.size)) if ndcg.size > 1 \
                        else 0.0
                    per_user[len(trials) - 1] = ndcg
                    study.tell(trial, row.ndcg)
                del model
            except Exception as exc:  # a candidate that fails is recorded, not fatal
                row.note = f"{type(exc).__name__}: {exc}"[:200]
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            last_cost = row.fit_seconds + row.score_seconds
    best, chosen = one_se_choice(trials, per_user)
    trials[chosen].note = "chosen"
    if best != chosen:
        trials[best].note = "best"
    user_model, user_params = trials[chosen].model, dict(trials[chosen].params)
    neighbour_model, neighbour_params = _neighbours(trials, per_user, chosen)
    factor_params = _factor_params(trials)
    return Selection(
        protocol=protocol.name,
        reason=protocol.reason,
        user_model=user_model,
        user_params=user_params,
        neighbour_model=neighbour_model,
        neighbour_params=neighbour_params,
        factor_params=factor_params,
        trials=trials,
        budget_seconds=round(budget, 1),
        seconds=round(time.perf_counter() - started, 1),
        validation_users=int(users.size),
        subsample_users=int(sub.size),
        tuned_on=data_size(data),
        skipped=skipped,
        best=f"{trials[best].model} {trials[best].params}",
    )


def _neighbours(trials: list[Trial], per_user: Mapping[int, NDArray[np.float32]],
                chosen: int) -> tuple[str, dict[str, Any]]:
    """The neighbour model: the chosen one when it is an item-neighbour model, else the
    one-SE choice among the item-neighbour trials (default RP3beta when none completed)."""
    if trials[chosen].model in NEIGHBOUR_MODELS:
        return trials[chosen].model, dict(trials[chosen].params)
    index = [i for i, t in enumerate(trials) if t.model in NEIGHBOUR_MODELS]
    scored = {j: per_user[i] for j, i in enumerate(index) if i in per_user}
    if not scored:
        from personify.jobs.training import DEFAULT_MODEL, DEFAULT_PARAMS

        return DEFAULT_MODEL, dict(DEFAULT_PARAMS)
    _, pick = one_se_choice([trials[i] for i in index], scored)
    return trials[index[pick]].model, dict(trials[index[pick]].params)


def _factor_params(trials: list[Trial]) -> dict[str, Any] | None:
    """The ``factors`` source's ALS: the best complete ALS trial on raw weights (the serving
    fold-in uses the event weights as they are); None when none completed."""
    als = [t for t in trials if t.model == "als" and t.status == "complete"
           and t.params.get("weight_transform", "none") == "none" and t.ndcg is not None]
    if not als:
        return None
    top = max(als, key=lambda t: t.ndcg or 0.0)
    return {"factors": int(top.params["factors"]),
            **{k: top.params[k] for k in ("regularization", "alpha", "iterations")}}


def data_size(data: Interactions) -> dict[str, int]:
    x = sp.csr_matrix(data.matrix)
    positive = x.data > 0
    return {
        "events": int(np.count_nonzero(positive)),
        "users": int(np.count_nonzero(np.diff(x.indptr))),
        "items": int(np.unique(x.indices[positive]).size),
    }


def changed_enough(tuned_on: Mapping[str, int], now: Mapping[str, int],
                   factor: float = RETUNE_FACTOR) -> str | None:
    """Why the data changed enough to re-tune (a count grew or shrank by ``factor`` or more),
    or None."""
    for key in ("events", "users", "items"):
        then, current = int(tuned_on.get(key, 0)), int(now.get(key, 0))
        if then <= 0 or current <= 0:
            return f"no {key} count from the last tuning"
        ratio = current / then
        if ratio >= factor or ratio <= 1 / factor:
            return f"{key} went from {then:,} to {current:,} (x{ratio:.2f})"
    return None


def apply_selection(config: TrainingConfig, selection: Selection) -> TrainingConfig:
    """``config`` with the chosen user model, neighbour model and factor settings."""
    factors = config.factors
    factor_params = dict(config.factor_params)
    if selection.factor_params is not None and factors is not None:
        if not config.factors_fixed:  # an operator's --factors wins over the tuned count
            factors = min(MAX_FACTORS, int(selection.factor_params["factors"]))
        factor_params = {**DEFAULT_FACTOR_PARAMS,
                         **{k: v for k, v in selection.factor_params.items() if k != "factors"}}
    return replace(
        config,
        model=selection.neighbour_model,
        params=dict(selection.neighbour_params),
        user_model=selection.user_model,
        user_params=dict(selection.user_params),
        factors=factors,
        factor_params=factor_params,
    )


@dataclass
class SelectionPlan:
    """How ``personify train`` picks its configuration: ``retune`` always searches; ``auto``
    reuses ``previous`` (the last version's ``metrics["selection"]``) unless the data changed
    enough (:func:`changed_enough`)."""

    mode: str = "auto"
    budget_seconds: float | None = None
    memory_budget_gb: float = 8.0
    previous: Mapping[str, Any] | None = None
    previous_version: str | None = None
    progress: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "retune"):
            raise InvalidInput(f"unknown selection mode {self.mode!r}", field="select",
                               accepted="auto, retune")
        if self.budget_seconds is not None and not 0 < self.budget_seconds <= 86_400:
            raise InvalidInput(f"invalid budget {self.budget_seconds!r}", field="budget",
                               accepted="seconds, more than 0 and at most 86400")

    def configure(self, data: Interactions, config: TrainingConfig
                  ) -> tuple[TrainingConfig, dict[str, Any]]:
        """The configuration to train with and the manifest's ``selection`` record."""
        now = data_size(data)
        if self.mode == "auto" and self.previous is not None:
            previous = Selection.from_dict(self.previous)
            why = changed_enough(previous.tuned_on, now)
            if why is None:
                previous.reused_from = previous.reused_from or self.previous_version
                record = previous.as_dict()
                record["retune_reason"] = ""
                return apply_selection(config, previous), record
        else:
            why = "asked (--retune)" if self.mode == "retune" else "no earlier selection"
        chosen = select_configuration(data, budget_seconds=self.budget_seconds,
                                      memory_budget_gb=self.memory_budget_gb,
                                      progress=self.progress)
        record = chosen.as_dict()
        record["retune_reason"] = why
        return apply_selection(config, chosen), record


__all__ = [
    "RETUNE_FACTOR", "Selection", "SelectionPlan", "Trial", "apply_selection",
    "candidate_models", "changed_enough", "default_budget_seconds", "one_se_choice",
    "select_configuration",
]
