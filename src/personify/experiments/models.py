"""Model-vs-model experiments: a variant payload ``{"model": "<version or name>"}`` serves that
stored model bundle to the variant's units.

``<version>`` is a version in the tenant's model store (``personify models list``); ``<name>`` is
a trained model's algorithm name (the ``model`` parameter of its manifest, e.g. ``rp3beta``) and
means the newest stored version trained with it. References are checked when an experiment is
created and again when it starts, where names are *pinned* to the version they resolve to then
(``payload.model`` becomes the version, ``payload.model_requested`` keeps the name), so a later
retraining never changes what a running experiment serves.
"""

from __future__ import annotations

from collections.abc import Callable

from personify.domain.errors import InvalidInput
from personify.experiments.definitions import Experiment
from personify.storage.model_files import FileModelStore

MODEL_KEY = "model"
REQUESTED_KEY = "model_requested"

ModelResolver = Callable[[str], str | None]
"""A model reference (version or name) -> the stored version it means, None when unknown."""


def store_resolver(store: FileModelStore, tenant: str) -> ModelResolver:
    """Resolve references against ``tenant``'s versions in ``store`` (read on every call)."""

    def resolve(reference: str) -> str | None:
        manifests = store.list(tenant)
        if any(m.version == reference for m in manifests):
            return reference
        named = [m for m in manifests if m.params.get("model") == reference]
        return max(named, key=lambda m: m.created_at).version if named else None

    return resolve


def _accepted(store_versions: Callable[[], list[str]] | None) -> str:
    hint = "a stored model version (personify models list) or the name of a trained model"
    if store_versions is None:
        return hint
    versions = store_versions()
    return f"{hint}; stored versions: {', '.join(versions[-5:]) or 'none (train one first)'}"


def check_models(
    experiment: Experiment,
    resolve: ModelResolver,
    *,
    pin: bool = False,
    versions: Callable[[], list[str]] | None = None,
) -> Experiment:
    """Raise ``InvalidInput`` (field ``variants.<i>.payload.model``) for a reference that names
    no stored model; with ``pin``, return the experiment with every reference replaced by the
    version it resolves to now."""
    variants = []
    for i, variant in enumerate(experiment.variants):
        if MODEL_KEY not in variant.payload:
            variants.append(variant)
            continue
        reference = variant.payload[MODEL_KEY]
        field = f"variants.{i}.payload.{MODEL_KEY}"
        if not isinstance(reference, str) or not reference:
            raise InvalidInput(
                f"invalid experiment field {field!r}: a model reference is a non-empty string",
                field=field,
                accepted=_accepted(versions),
            )
        version = resolve(reference)
        if version is None:
            raise InvalidInput(
                f"invalid experiment field {field!r}: no stored model {reference!r} "
                f"(variant {variant.name!r})",
                field=field,
                accepted=_accepted(versions),
            )
        if pin and version != reference:
            payload = {**variant.payload, MODEL_KEY: version, REQUESTED_KEY: reference}
            variant = variant.model_copy(update={"payload": payload})
        variants.append(variant)
    if not pin:
        return experiment
    return experiment.model_copy(update={"variants": variants})


def store_checker(
    store: FileModelStore, tenant: str
) -> Callable[[Experiment, bool], Experiment]:
    """``check(experiment, pin)`` against ``tenant``'s model store, for the service functions."""
    resolve = store_resolver(store, tenant)

    def versions() -> list[str]:
        return [m.version for m in store.list(tenant)]

    def check(experiment: Experiment, pin: bool) -> Experiment:
        return check_models(experiment, resolve, pin=pin, versions=versions)

    return check


def pinned_versions(experiment: Experiment) -> list[str]:
    """The model versions the experiment's variants serve (after pinning)."""
    return [
        str(v.payload[MODEL_KEY])
        for v in experiment.variants
        if isinstance(v.payload.get(MODEL_KEY), str)
    ]
