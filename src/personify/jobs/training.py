"""Offline training: events -> interactions -> a collaborative model -> a served ``ModelBundle``
(item neighbours + decayed popularity + blend weights), stored as a new version and promoted.

Training never runs inside a request; the server picks the new version up and swaps it in.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms import create_model
from personify.algorithms.base import Recommender
from personify.data.events import EventWeights, interactions_from_events
from personify.data.interactions import Interactions
from personify.data.popularity import decayed_popularity
from personify.domain.errors import InvalidInput
from personify.domain.events import Event
from personify.jobs.blend_training import BLEND_SELECTIONS, learn_source_weights
from personify.jobs.ranker_training import LABELS, ranking_data, train_ranker
from personify.jobs.user_lists import build_user_lists, listed_users
from personify.privacy.training import TrainingPrivacy
from personify.serving.bundle import ModelBundle, default_source_weights
from personify.serving.factors import FactorModel
from personify.serving.source_registry import TrainingLog, source_registry
from personify.storage.model_files import FileModelStore, ModelManifest, new_version
from personify.storage.ports import CatalogStore, EventStore, UserStore

DEFAULT_MODEL = "rp3beta"
DEFAULT_PARAMS: dict[str, Any] = {"k": 200, "alpha": 0.8, "beta": 0.3}
"""The best item-neighbour model of the Gowalla evaluation (tuned on a validation split carved
from train; see docs/benchmarks.md): the serving chain folds live histories through its sparse
item x item matrix, and erasure subtracts a person from it exactly."""
DEFAULT_FACTORS = 64
DEFAULT_FACTOR_PARAMS: dict[str, Any] = {"regularization": 0.05, "alpha": 10.0, "iterations": 15}
"""Implicit ALS for the ``factors`` source (the Gowalla evaluation's ALS settings)."""
MAX_FACTORS = 256
DEFAULT_USER_MODEL = "bspm"
DEFAULT_USER_PARAMS: dict[str, Any] = {
    "factor_dim": 576, "idl_beta": 0.2, "T_b": 1.0, "K_b": 1, "T_s": 2.5, "K_s": 1,
    "solver": "rk4", "merge": "early",
}
"""The best model of the Gowalla evaluation (BSPM, tuned on a validation split carved from train;
docs/benchmarks/gowalla.md): too slow to score one person inside a request, it scores every
trained person in batch at training time (``personify.serving.user_lists``)."""
Configure = Callable[[Interactions, "TrainingConfig"], tuple["TrainingConfig", dict[str, Any]]]
"""Chooses the training configuration from the interactions (see ``train_bundle``)."""
OnModel = Callable[[Recommender, "TrainingConfig"], None]
"""Sees the fitted neighbour model of the served bundle (not the blend's validation refits)
before it is dropped, with the configuration it was fitted by."""
DEFAULT_LIST_LENGTH = 100
DEFAULT_LIST_USERS = 200_000


def default_factors() -> int | None:
    """ALS factors by default when the ``implicit`` library (training extra) is installed."""
    return DEFAULT_FACTORS if importlib.util.find_spec("implicit") is not None else None


@dataclass
class TrainingConfig:
    """What ``personify train`` fits; the defaults are the configuration the evaluation chose."""

    model: str = DEFAULT_MODEL
    params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    neighbours: int = 100
    popularity_half_life_days: float = 30.0
    weights: EventWeights = field(default_factory=EventWeights)
    min_events: int = 1
    learn_blend: bool = True
    blend_users: int = 2000
    blend_selection: str = "one-se"
    """``one-se``: the simplest source weights within one standard error of the best validation
    hit rate (fewer sources asked per request); ``best``: the best hit rate, however small the
    margin."""
    train_ranker: bool = True
    ranker_min_groups: int = 50
    factors: int | None = field(default_factory=default_factors)
    """Latent dimensions of the ALS model behind the ``factors`` source; None = no factors."""
    factors_fixed: bool = False
    """``factors`` was chosen by the operator (``--factors``): the selection keeps it."""
    factor_params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_FACTOR_PARAMS))
    """Other ``personify.algorithms.als.ALS`` parameters (regularization, alpha, iterations)."""
    user_model: str | None = DEFAULT_USER_MODEL
    """The model whose batch scores become each trained person's list; None = no lists (the
    ``collaborative`` source folds histories through the neighbours only)."""
    user_params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_USER_PARAMS))
    list_length: int = DEFAULT_LIST_LENGTH
    list_users: int = DEFAULT_LIST_USERS
    """At most this many people get a list (the most recently active)."""

    def __post_init__(self) -> None:
        if self.factors is not None and not (
            isinstance(self.factors, int) and 2 <= self.factors <= MAX_FACTORS
        ):
            raise InvalidInput(
                f"invalid number of factors {self.factors!r}",
                field="factors",
                accepted=f"an integer from 2 to {MAX_FACTORS}, or none (0) for no factor model",
            )
        if self.blend_selection not in BLEND_SELECTIONS:
            raise InvalidInput(
                f"unknown blend selection {self.blend_selection!r}", field="blend_selection",
                accepted=", ".join(BLEND_SELECTIONS),
            )
        for name, value, top in (("list_length", self.list_length, 1000),
                                 ("list_users", self.list_users, 10**8)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
                raise InvalidInput(
                    f"invalid {name} {value!r}", field=name,
                    accepted=f"an integer from 0 to {top} (0 = no per-person lists)",
                )
        allowed = {"regularization", "alpha", "iterations", "binary", "seed", "num_threads"}
        unknown = sorted(set(self.factor_params) - allowed)
        if unknown:
            raise InvalidInput(
                f"unknown factor parameter {unknown[0]!r}",
                field="factor_params",
                accepted=", ".join(sorted(allowed)),
            )


def neighbour_matrix(model: Recommender, n_items: int, k: int) -> sp.csr_matrix:
    """items x items: row i holds the items whose scores item i raises (source -> target)."""
    direct = getattr(model, "W_", None)
    if isinstance(direct, sp.spmatrix | sp.sparray):
        return sp.csr_matrix(direct, dtype=np.float32)
    rows, cols, vals = [], [], []
    for start in range(0, n_items, 1024):
        idx = np.arange(start, min(n_items, start + 1024))
        ids, scores = model.similar_items(idx, k)
        mask = (ids >= 0) & np.isfinite(scores) & (scores > 0)
        r = np.repeat(idx, ids.shape[1]).reshape(ids.shape)
        rows.append(r[mask])
        cols.append(ids[mask])
        vals.append(scores[mask])
    data = np.concatenate(vals) if vals else np.zeros(0, np.float32)
    return sp.csr_matrix(
        (data, (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
        dtype=np.float32,
    )


def train_bundle(
    events: Iterable[Event],
    config: TrainingConfig | None = None,
    *,
    version: str | None = None,
    on_data: Callable[[Interactions], None] | None = None,
    labels: Mapping[str, Sequence[str]] | None = None,
    list_progress: Callable[[int, int], None] | None = None,
    configure: Configure | None = None,
    on_model: OnModel | None = None,
) -> tuple[ModelBundle, ModelManifest]:
    """Fit the configured model on ``events`` and package it for serving (``on_data``
    receives the interactions the bundle is fitted on; ``labels``, item id -> categories, lets
    the blend learn the ``interests`` weight; ``configure`` chooses the configuration from the
    interactions, e.g. ``personify.jobs.selection.SelectionPlan.configure``, and returns it
    with the record kept in the manifest's ``metrics["selection"]``)."""
    config = config or TrainingConfig()
    started = time.perf_counter()
    kinds: list[bool] = []
    weights = config.weights

    def noted(stream: Iterable[Event]) -> Iterable[Event]:
        """The events, noting per kept log row whether it is a purchase (for basket sources)."""
        for event in stream:
            if event.item_id is not None and weights.weight(event) is not None:
                kinds.append(event.type == "purchase")
            yield event

    data = interactions_from_events(noted(events), config.weights)
    purchased = np.asarray(kinds, dtype=bool) if len(kinds) == len(data.item_idx) else None
    if on_data is not None:
        on_data(data)
    return bundle_from_interactions(data, config, version=version, labels=labels,
                                    list_progress=list_progress, configure=configure,
                                    started=started, purchased=purchased, on_model=on_model)


def bundle_from_interactions(
    data: Interactions,
    config: TrainingConfig,
    *,
    version: str | None = None,
    labels: Mapping[str, Sequence[str]] | None = None,
    list_progress: Callable[[int, int], None] | None = None,
    configure: Configure | None = None,
    started: float | None = None,
    purchased: NDArray[np.bool_] | None = None,
    on_model: OnModel | None = None,
) -> tuple[ModelBundle, ModelManifest]:
    """``train_bundle`` from interactions already built (e.g. an evaluation's training part;
    ``purchased`` marks the log rows that are purchases, for the basket sources)."""
    started = time.perf_counter() if started is None else started
    if len(data.item_idx) < config.min_events or data.n_items == 0:
        raise InvalidInput(
            f"not enough events to train: {len(data.item_idx)} usable item events",
            field="events",
            accepted=f"at least {max(1, config.min_events)} item events",
        )
    selection: dict[str, Any] | None = None
    if configure is not None:
        config, selection = configure(data, config)
    bundle = fit_bundle(data, config, version or new_version(), list_progress=list_progress,
                        purchased=purchased, on_model=on_model)
    blend_metrics: dict[str, Any] = {}
    if config.learn_blend:
        fitted = learn_source_weights(
            data,
            lambda reduced, users, keep: fit_bundle(
                reduced, config, "validation", list_users=users,
                purchased=purchased[keep] if purchased is not None else None,
            ),
            labels=labels,
            max_users=config.blend_users,
            selection=config.blend_selection,
        )
        bundle.source_weights.update(fitted.weights)
        blend_metrics = {
            "blend_weights": fitted.weights,
            "blend_users": fitted.users,
            "blend_holdout": fitted.protocol,
            "blend_hit_rate@20": fitted.hit_rate,
        }
    manifest = ModelManifest(
        version=bundle.version,
        tenant="",
        created_at=datetime.now(UTC).isoformat(),
        params={"model": config.model, **config.params},
        events_used=len(data.item_idx),
        fit_seconds=round(time.perf_counter() - started, 3),
        metrics={"users": data.n_users, "items": data.n_items, **blend_metrics},
    )
    if selection is not None:
        manifest.metrics["selection"] = selection
    if bundle.user_lists is not None:
        manifest.params["user_model"] = {"model": config.user_model, **config.user_params,
                                         "list_length": config.list_length}
        manifest.metrics["listed_users"] = int(np.count_nonzero(np.diff(bundle.user_lists.indptr)))
        manifest.metrics["user_lists_mb"] = round(bundle.user_lists.nbytes / 2**20, 1)
    if bundle.factors is not None:
        manifest.params["factors"] = {"k": bundle.factors.dimensions, **bundle.factors.params}
        manifest.metrics["factors_fit_seconds"] = bundle.factors.params.get("fit_seconds")
    return bundle, manifest


def fit_bundle(
    data: Interactions,
    config: TrainingConfig,
    version: str,
    *,
    list_users: NDArray[np.int64] | None = None,
    list_progress: Callable[[int, int], None] | None = None,
    purchased: NDArray[np.bool_] | None = None,
    on_model: OnModel | None = None,
) -> ModelBundle:
    """Fit the configured model on ``data`` and package neighbours, popularity, the user
    model's lists (for ``list_users``, default the most recently active ``config.list_users``)
    and the registered sources' parts."""
    model = create_model(config.model, **config.params).fit(data)
    neighbours = neighbour_matrix(model, data.n_items, config.neighbours)
    if on_model is not None:
        on_model(model, config)
    user_lists = None
    if config.user_model is not None and config.list_length > 0:
        scorer = (
            model
            if config.user_model == config.model and config.user_params == config.params
            else create_model(config.user_model, **config.user_params).fit(data)
        )
        users = list_users if list_users is not None else listed_users(data, config.list_users)
        user_lists = build_user_lists(
            scorer, data, neighbours, k=config.list_length, users=users, progress=list_progress
        )
        del scorer
    return ModelBundle(
        version=version,
        items=data.items,
        neighbours=neighbours,
        popularity=decayed_popularity(data, config.popularity_half_life_days),
        model_name=config.model,
        params=dict(config.params),
        source_weights=default_source_weights(),
        factors=fit_factors(data, config, version) if config.factors else None,
        user_lists=user_lists,
        parts=source_parts(TrainingLog(data, purchased)),
    )


def source_parts(log: TrainingLog) -> dict[str, Any]:
    """The trained state of every registered source that trains one (``SourceSpec.train``) and
    finds what it needs in the log (e.g. purchases)."""
    parts = {}
    for spec in source_registry().trainers():
        assert spec.train is not None
        part = spec.train(log)
        if part is not None:
            parts[spec.name] = part
    return parts


def fit_factors(data: Interactions, config: TrainingConfig, version: str) -> FactorModel:
    """Fit implicit ALS (the ``implicit`` library) on ``data`` and keep what serving needs:
    the item factors (float32) and the fold-in's regularization, confidence scale and weights."""
    started = time.perf_counter()
    params = {**DEFAULT_FACTOR_PARAMS, **config.factor_params}
    model = create_model("als", factors=config.factors, **params).fit(data)
    weights = dict(config.weights.weights)
    # the online log keeps no rating values: a rating counts as one point above neutral
    weights.setdefault("rating", config.weights.rating_scale)
    item_factors: NDArray[np.float32] = getattr(model, "item_factors_")  # noqa: B009
    return FactorModel.build(
        version,
        item_factors,
        regularization=float(params["regularization"]),
        alpha=float(params["alpha"]),
        event_weights=weights,
        binary=bool(params.get("binary", False)),
        params={**params, "fit_seconds": round(time.perf_counter() - started, 3)},
    )


def attach_ranker(
    bundle: ModelBundle,
    events: Iterable[Event],
    catalog: CatalogStore,
    users: UserStore,
    tenant: str,
    config: TrainingConfig,
) -> dict[str, Any]:
    """Train the LambdaRank ranker from the impression log and attach it when it beats the
    blend on the newest impressions; returns its metrics."""
    items = {item.item_id: item for item in catalog.scan(tenant)}
    popularity = {
        item_id: float(bundle.popularity[i]) for i, item_id in enumerate(bundle.items.ids)
    }
    data = ranking_data(
        events,
        items,
        users=lambda u: users.get(tenant, u),
        popularity=popularity,
        weights=bundle.source_weights,
    )
    fit = train_ranker(data, min_groups=config.ranker_min_groups)
    bundle.ranker = fit.ranker
    return fit.metrics


EXCLUSION_HELP: dict[str, str] = {
    "consent default:opt-in": "no profiling consent recorded and profiling is opt-in (no legal "
    "basis recorded): run `personify init --legal-basis consent` (consent collected elsewhere) "
    "or `--legal-basis legitimate-interest`, or record consents "
    "(POST /v1/users/{id}/consents, purpose profiling)",
    "past retention": "older than the retention_days setting",
    "erased": "people erased (kept out for good)",
    "restricted": "people whose processing is restricted (GDPR art. 18)",
}


def explain_exclusions(excluded: Mapping[str, int]) -> str:
    """One sentence per reason events were left out of training, with how to change it."""
    parts = []
    for reason, count in sorted(excluded.items(), key=lambda kv: -kv[1]):
        why = EXCLUSION_HELP.get(reason)
        if why is None and reason.startswith("consent "):
            why = f"profiling consent {reason.removeprefix('consent ')} by the person"
        parts.append(f"{count:,} events excluded: {why or reason}")
    return "; ".join(parts)


def train_tenant(
    events: EventStore,
    models: FileModelStore,
    tenant: str,
    config: TrainingConfig | None = None,
    *,
    promote: bool = True,
    progress: Callable[[int], None] | None = None,
    list_progress: Callable[[int, int], None] | None = None,
    catalog: CatalogStore | None = None,
    users: UserStore | None = None,
    privacy: TrainingPrivacy | None = None,
    configure: Configure | None = None,
) -> ModelManifest:
    """Train on every stored event of ``tenant``, save a new version and (by default) promote it.

    With ``privacy``, events of people without profiling consent, restricted or erased, and
    events past retention are skipped, and the version's influence index is saved for erasure.
    """
    started = datetime.now(UTC)
    excluded: Counter[str] = Counter()

    def usable(scanned: Iterable[Event], counts: Counter[str] | None = None) -> Iterable[Event]:
        keep = (
            privacy.event_filter(tenant, started, excluded=counts) if privacy is not None
            else None
        )
        return scanned if keep is None else (e for e in scanned if keep(e))

    def stream() -> Iterable[Event]:
        for count, event in enumerate(usable(events.scan(tenant), excluded), start=1):
            if progress is not None and count % 10_000 == 0:
                progress(count)
            yield event

    config = config or TrainingConfig()
    fitted: list[Interactions] = []
    version = new_version()
    kept = (  # what an exact erasure needs of the model beyond the influence index (EASE's P)
        (lambda model, used: privacy.record_model(models, tenant, version, model, used.neighbours))
        if privacy is not None else None
    )
    labels = (
        {item.item_id: item.categories for item in catalog.scan(tenant) if item.categories}
        if catalog is not None and config.learn_blend
        else None
    )
    try:
        bundle, manifest = train_bundle(
            stream(), config, version=version, on_data=fitted.append, labels=labels,
            list_progress=list_progress, configure=configure, on_model=kept,
        )
    except BaseException as exc:
        partial = Path(models.root) / tenant / version
        if not (partial / "manifest.json").exists():  # no half-written version left behind
            shutil.rmtree(partial, ignore_errors=True)
        if not isinstance(exc, InvalidInput):
            raise
        if excluded and exc.field == "events":
            raise InvalidInput(
                f"{exc.message}; {explain_exclusions(excluded)}", field="events",
                accepted=exc.accepted,
            ) from exc
        raise
    manifest.tenant = tenant
    if excluded:
        manifest.metrics["excluded_events"] = dict(excluded)
    manifest.data_as_of = started.isoformat()
    if config.train_ranker and catalog is not None and users is not None:
        ranker_types = ["impression", *LABELS]
        manifest.metrics["ranker"] = attach_ranker(
            bundle, usable(events.scan(tenant, types=ranker_types)), catalog, users, tenant, config
        )
    models.save(tenant, bundle, manifest)
    if privacy is not None:  # from the training pass: exactly the people the model saw
        privacy.record_influence_of(
            models, tenant, bundle.version, fitted[0],
            half_life_days=config.popularity_half_life_days,
        )
    if promote:
        served = models.promote(tenant, manifest.version)
        manifest.promoted = served == manifest.version
        if not manifest.promoted:  # people erased while it trained were subtracted
            manifest.metrics["promoted_as"] = served
    return manifest
