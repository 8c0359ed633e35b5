"""The served configuration evaluated as it is served: a bundle trained on the training part
(chosen and tuned on a validation split of it, like ``personify train``) answers one real
``RecommendationRequest`` per test person through a ``RecommendationService``, and the answers
are scored with the evaluation's metrics (what ``personify evaluate -m served`` and
``benchmarks/auto_tuning.py`` run)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms import create_model
from personify.algorithms.base import Recommender
from personify.data.interactions import Interactions
from personify.data.splits import Split
from personify.domain.events import Event
from personify.domain.items import Item
from personify.evaluation._resources import peak_rss_mb
from personify.evaluation.protocol import RankedLists
from personify.jobs.selection import Selection, SelectionPlan, Trial
from personify.jobs.training import TrainingConfig, bundle_from_interactions
from personify.serving.bundle import ModelBundle
from personify.serving.catalog import CatalogSnapshot
from personify.serving.chain import RecommendationService
from personify.serving.request import Exclusions, RecommendationRequest
from personify.storage.model_files import ModelManifest
from personify.storage.online.memory import MemoryOnlineState

TENANT = "evaluation"
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
MAX_EXCLUDED = 1000


@dataclass
class ServedModel:
    bundle: ModelBundle
    manifest: ModelManifest
    selection: Selection | None


def train_served(
    train: Interactions,
    *,
    budget_seconds: float | None = None,
    config: TrainingConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> ServedModel:
    """Choose, tune and fit the served configuration on ``train`` as ``personify train``
    does (selection, refit, blend; no ranker: an offline log has no impressions)."""
    plan = SelectionPlan(mode="retune", budget_seconds=budget_seconds, progress=progress)
    bundle, manifest = bundle_from_interactions(
        train, config or TrainingConfig(), version="evaluation", configure=plan.configure
    )
    record = manifest.metrics.get("selection")
    return ServedModel(bundle, manifest,
                       Selection.from_dict(record) if isinstance(record, dict) else None)


def retrain_reusing(train: Interactions, served: ServedModel) -> float:
    """Seconds of the retrain a scheduler runs next on the same events: the plan reuses the
    served version's selection (no search); raises if it searched instead."""
    record = served.manifest.metrics.get("selection")
    plan = SelectionPlan(mode="auto", previous=record if isinstance(record, dict) else None,
                         previous_version=served.manifest.version)
    started = time.perf_counter()
    _, manifest = bundle_from_interactions(
        train, TrainingConfig(), version="retrain", configure=plan.configure
    )
    seconds = time.perf_counter() - started
    again = manifest.metrics.get("selection")
    if not isinstance(again, dict) or not again.get("reused_from"):
        raise RuntimeError("the retrain searched again instead of reusing the selection")
    return seconds


def _event_times(train: Interactions) -> tuple[NDArray[np.float64], datetime]:
    """Each log row's time (the real one, or one second apart per person from a fixed epoch
    when the log has none) and the request clock two days after the last."""
    if train.timestamps is not None and len(train.timestamps):
        stamps = np.asarray(train.timestamps, dtype=np.float64)
    else:
        order = np.argsort(train.user_idx, kind="stable")
        rank = np.empty(len(order), dtype=np.float64)
        starts = np.r_[0, np.flatnonzero(np.diff(train.user_idx[order])) + 1]
        counts = np.diff(np.r_[starts, len(order)])
        rank[order] = np.arange(len(order)) - np.repeat(starts, counts)
        stamps = EPOCH.timestamp() + rank
    now = datetime.fromtimestamp(float(stamps.max()), UTC) + timedelta(days=2)
    return stamps, now


def served_rankings(
    bundle: ModelBundle,
    train: Interactions,
    users: NDArray[np.int64],
    k: int = 20,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> NDArray[np.int64]:
    """Ask the serving chain for ``k`` items per person in ``users`` (indices of ``train``'s
    vocabulary): the online state holds the training events (as views, at their times), each
    request excludes the person's training items (the protocol's masking; at most 1,000);
    returns users x k item indices, -1 padded."""
    stamps, now = _event_times(train)
    state = MemoryOnlineState()
    positive = np.flatnonzero(train.weights > 0)
    user_ids, item_ids = train.users.ids, train.items.ids
    for lo in range(0, positive.size, 50_000):
        rows = positive[lo:lo + 50_000]
        events = [
            Event(event_id=f"t{r}", type="view", user_id=user_ids[int(train.user_idx[r])],
                  item_id=item_ids[int(train.item_idx[r])],
                  timestamp=datetime.fromtimestamp(float(stamps[r]), UTC))
            for r in rows
        ]
        state.apply(TENANT, events, now=now - timedelta(days=1))
    catalog = CatalogSnapshot(Item(item_id=i) for i in item_ids)
    service = RecommendationService(bundles=lambda t: bundle, catalogs=lambda t: catalog,
                                    state=state, log_impression=None, clock=lambda: now)
    history = sp.csr_matrix(train.matrix)
    ranked = np.full((len(users), k), -1, dtype=np.int64)
    index = {item_id: i for i, item_id in enumerate(item_ids)}
    for r, u in enumerate(users):
        owned = history.indices[history.indptr[u]:history.indptr[u + 1]]
        request = RecommendationRequest(
            user_id=user_ids[int(u)], n=k, explain=False, log_impression=False,
            exclude=Exclusions(items=[item_ids[int(i)] for i in owned[:MAX_EXCLUDED]]),
        )
        got = [index[i.item_id] for i in service.recommend(TENANT, request).items]
        ranked[r, :len(got)] = got
        if progress is not None and (r + 1) % 500 == 0:
            progress(r + 1, len(users))
    return ranked


def served_entries(
    budget_seconds: float | None = None, *, candidates: bool = True,
    progress: Callable[[str], None] | None = None, time_retrain: bool = False,
) -> Callable[[Split, int], dict[str, tuple[Recommender, dict[str, Any], float]]]:
    """``run_evaluation(extra=...)``: the served configuration chosen on the training part
    (answers of the serving chain) and, with ``candidates``, each candidate model at the best
    parameters its trials found on the same validation split, refitted on the training part.
    ``time_retrain`` also times a scheduled retrain on the same events, which reuses the
    chosen configuration (``retrain_reuse_seconds`` in the served entry's parameters)."""

    def build(split: Split, k: int) -> dict[str, tuple[Recommender, dict[str, Any], float]]:
        started = time.perf_counter()
        served = train_served(split.train, budget_seconds=budget_seconds, progress=progress)
        fit_seconds = time.perf_counter() - started
        users = np.flatnonzero(np.diff(sp.csr_matrix(split.test.matrix).indptr) > 0)
        ranked = np.full((split.train.n_users, k), -1, dtype=np.int64)
        ranked[users] = served_rankings(served.bundle, split.train, users, k)
        params = describe(served.selection, served.manifest)
        if time_retrain:
            params["retrain_reuse_seconds"] = round(retrain_reusing(split.train, served), 1)
        entries: dict[str, tuple[Recommender, dict[str, Any], float]] = {
            "served": (RankedLists(ranked), params, fit_seconds)}
        if candidates and served.selection is not None:
            for name, params in best_per_model(served.selection).items():
                started = time.perf_counter()
                model = create_model(name, **params).fit(split.train)
                entries[f"{name} (tuned)"] = (model, params, time.perf_counter() - started)
        return entries

    return build


def best_per_model(selection: Selection) -> dict[str, dict[str, Any]]:
    """Each candidate's best fully scored parameters on the validation split."""
    best: dict[str, Trial] = {}
    for trial in selection.trials:
        if trial.status == "complete" and trial.ndcg is not None and (
                trial.model not in best or trial.ndcg > (best[trial.model].ndcg or 0.0)):
            best[trial.model] = trial
    return {name: dict(trial.params) for name, trial in best.items()}


def describe(selection: Selection | None, manifest: ModelManifest) -> dict[str, Any]:
    """The served configuration in one line per part (for the report's parameters)."""
    params: dict[str, Any] = {
        "user_model": manifest.params.get("user_model"),
        "neighbours": {k: v for k, v in manifest.params.items() if k != "user_model"},
        "blend_weights": manifest.metrics.get("blend_weights"),
    }
    if selection is not None:
        params["validation"] = selection.protocol
        params["chosen"] = f"{selection.user_model} {selection.user_params}"
        params["selection_seconds"] = selection.seconds
        params["selection_budget_seconds"] = selection.budget_seconds
        params["trials"] = len(selection.trials)
    params["train_seconds"] = manifest.fit_seconds
    params["peak_rss_mb_after_training"] = round(peak_rss_mb(), 1)
    return params


__all__ = ["ServedModel", "best_per_model", "describe", "retrain_reusing", "served_entries",
           "served_rankings", "train_served"]
