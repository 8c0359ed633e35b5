"""Experiments on the recommendation path: assign the visitor, apply the variant's payload to
the request, serve, and log the exposure when something was actually shown.

Payload keys understood (variant payloads are flat):

* ``personalized: false`` — serve only the non-personal sources (trending, new, popular);
* ``sources: [...]`` — this source order instead of the configured one;
* ``mmr_lambda`` / ``max_per_category`` — diversity settings;
* ``model`` — not applied: the chain serves one model bundle per tenant (a warning says so).

Only experiments with at least one such key in a variant take part; others (e-mail templates,
bandits) are exposed by their own channel through ``POST /v1/exposures``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from personify.api.experiments_runtime import ExperimentsRuntime
from personify.experiments.assignment import Assignment, assign, assignment_unit
from personify.experiments.definitions import Experiment, UnitAttributes
from personify.experiments.service import log_exposure
from personify.serving.chain import RecommendationResult, RecommendationService
from personify.serving.request import Diversity, RecommendationRequest

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
    """The request as the variant serves it, and warnings for payload keys not applied."""
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
    if "model" in payload:
        warnings.append(
            f"experiment variant model {payload['model']!r} not applied: one model bundle "
            "is served per tenant"
        )
    if not update:
        return request, warnings
    return RecommendationRequest.model_validate({**request.model_dump(), **update}), warnings


def unit_attributes(request: RecommendationRequest) -> UnitAttributes:
    """What targeting sees of a recommendation request: its country and channel."""
    location = request.context.location
    return UnitAttributes(
        country=location.country if location is not None else None,
        channel=request.context.channel,
    )


def recommend_in_experiments(
    runtime: ExperimentsRuntime,
    service: RecommendationService,
    tenant: str,
    request: RecommendationRequest,
) -> tuple[RecommendationResult, list[Assignment]]:
    """Serve ``request`` under the visitor's serving experiments; log exposures when items were
    shown (the exposure carries the recommendation id). Holdout units get the default."""
    running = [e for e in runtime.running(tenant) if affects_serving(e)]
    if not running or request.subject is None:
        return service.recommend(tenant, request), []
    unit = assignment_unit(
        request.user_id, request.anonymous_id, runtime.aliases.for_tenant(tenant)
    )
    attributes = unit_attributes(request)
    assignments = [a for e in running if (a := assign(e, unit, attributes)) is not None]
    by_name = {e.name: e for e in running}
    warnings: list[str] = []
    served = request
    for a in assignments:
        if a.variant is None:
            continue
        payload = by_name[a.experiment].variant(a.variant).payload
        served, notes = apply_variant(
            served, payload, fallback_sources=non_personal_sources(service)
        )
        warnings.extend(notes)
    result = service.recommend(tenant, served)
    result.warnings.extend(warnings)
    if result.items and request.log_impression:
        for a in assignments:
            log_exposure(
                runtime.exposures, tenant, a, recommendation_id=result.recommendation_id
            )
    return result, assignments
