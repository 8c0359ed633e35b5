"""Experiments on the recommendation path: assign the visitor, apply the variant's payload to
the request, serve, and log the exposure when something was actually shown.

Payload keys understood (variant payloads are flat):

* ``personalized: false`` — serve only the non-personal sources (trending, new, popular);
* ``sources: [...]`` — this source order instead of the configured one;
* ``mmr_lambda`` / ``max_per_category`` — diversity settings;
* ``model`` — serve this stored model version (pinned when the experiment started, see
  :mod:`personify.experiments.models`) instead of the live one; the bundle comes from the
  registry's small cache of pinned versions. When it cannot be loaded the unit is served the
  live model with a warning and no exposure is logged (it did not see its variant). When two
  experiments of different layers both pin a model, the first (by name) applies.

Only experiments with at least one such key in a variant take part; others (e-mail templates,
bandits) are exposed by their own channel through ``POST /v1/exposures``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from personify.experiments.assignment import Assignment, assign, assignment_unit
from personify.experiments.definitions import Experiment, UnitAttributes
from personify.experiments.models import MODEL_KEY
from personify.experiments.service import log_exposure
from personify.runtime.experiments import ExperimentsRuntime
from personify.serving.bundle import ModelBundle
from personify.serving.chain import RecommendationResult, RecommendationService
from personify.serving.request import Diversity, RecommendationRequest

PinnedBundles = Callable[[str, str], ModelBundle | None]
"""``(tenant, version) -> bundle`` (``BundleRegistry.pinned``)."""

SERVING_KEYS = frozenset({"personalized", "sources", "mmr_lambda", "max_per_category", "model"})


def affects_serving(experiment: Experiment) -> bool:
    """True when a variant of the experiment changes how recommendations are served."""
    return any(SERVING_KEYS & v.payload.keys() for v in experiment.variants)


def non_personal_sources(service: RecommendationService) -> list[str]:
    """The configured source order without the personal sources (the non-personalized arm)."""
    return [n for n in service.source_order if not service.sources[n].personal]


def apply_variant(
    request: RecommendationRequest,
    payload: Mapping[str, Any],
    *,
    fallback_sources: Sequence[str],
) -> tuple[RecommendationRequest, list[str]]:
    """The request as the variant serves it, and warnings for payload keys not applied (the
    ``model`` key is applied by :func:`recommend_in_experiments`, which picks the bundle)."""
    update: dict[str, Any] = {}
    warnings: list[str] = []
    if payload.get("personalized") is False:
        update["sources"] = list(fallback_sources)
    if isinstance(payload.get("sources"), list):
        update["sources"] = [str(s) for s in payload["sources"]]
    diversity = {
        k: payload[k] for k in ("mmr_lambda", "max_per_category") if payload.get(k) is not None
    }
    if diversity:
        update["diversity"] = Diversity.model_validate(
            {**request.diversity.model_dump(), **diversity}
        )
    if not update:
        return request, warnings
    return RecommendationRequest.model_validate({**request.model_dump(), **update}), warnings


def unit_attributes(request: RecommendationRequest,
                    segments: frozenset[str] = frozenset()) -> UnitAttributes:
    """What targeting sees of a recommendation request: its country and channel, and the
    person's live segments."""
    location = request.context.location
    return UnitAttributes(
        segments=segments,
        country=location.country if location is not None else None,
        channel=request.context.channel,
    )


def recommend_in_experiments(
    runtime: ExperimentsRuntime,
    service: RecommendationService,
    tenant: str,
    request: RecommendationRequest,
    *,
    pinned: PinnedBundles | None = None,
) -> tuple[RecommendationResult, list[Assignment]]:
    """Serve ``request`` under the visitor's serving experiments; log exposures when items were
    shown (the exposure carries the recommendation id). Holdout units get the default.
    ``pinned`` gives the bundles of model-vs-model variants (without it they are not applied)."""
    running = [e for e in runtime.running(tenant) if affects_serving(e)]
    if not running or request.subject is None:
        return service.recommend(tenant, request), []
    unit = assignment_unit(
        request.user_id, request.anonymous_id, runtime.aliases.for_tenant(tenant)
    )
    attributes = unit_attributes(
        request, runtime.live_segments(tenant, request.user_id, running))
    assignments = [a for e in running if (a := assign(e, unit, attributes)) is not None]
    by_name = {e.name: e for e in running}
    warnings: list[str] = []
    not_served: set[str] = set()
    served = request
    bundle: ModelBundle | None = None
    for a in assignments:
        if a.variant is None:
            continue
        payload = by_name[a.experiment].variant(a.variant).payload
        served, notes = apply_variant(
            served, payload, fallback_sources=non_personal_sources(service)
        )
        warnings.extend(notes)
        if MODEL_KEY in payload:
            version = str(payload[MODEL_KEY])
            problem = None
            if bundle is not None:
                problem = f"model {bundle.version!r} of an earlier experiment applies"
            elif pinned is None:
                problem = "pinned models are not served here"
            else:
                bundle = pinned(tenant, version)
                if bundle is None:
                    problem = "the version cannot be loaded"
            if problem is not None:
                warnings.append(
                    f"experiment {a.experiment!r} variant {a.variant!r} model {version!r} "
                    f"not applied: {problem}"
                )
                not_served.add(a.experiment)
    result = service.recommend(tenant, served, bundle=bundle)
    result.warnings.extend(warnings)
    if result.items and request.log_impression:
        for a in assignments:
            if a.experiment in not_served:
                continue
            log_exposure(
                runtime.exposures, tenant, a, recommendation_id=result.recommendation_id
            )
    return result, assignments
