"""Deterministic, salted assignment of units to experiments, variants and holdouts.

A unit is hashed with SHA-256 into one of ``N_BUCKETS`` buckets of its *layer* (salt
``layer:<name>``); each running experiment owns a contiguous bucket range of its layer, so two
experiments in one layer never share a unit, while experiments in different layers are
independent. Inside an experiment, a second hash (salted with the experiment) picks holdout and
variant by weight.

Sticky across login: :func:`assignment_unit` maps (user id, anonymous id) to the unit key. The
first key seen for a user wins and is recorded in an alias map the caller passes in (a dict, or a
persisted mapping), so a visitor assigned as ``anon:<id>`` keeps that variant after logging in,
on every device that then presents the user id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass

from personify.domain.errors import Conflict, InvalidInput
from personify.experiments.definitions import (
    N_BUCKETS,
    Experiment,
    ExperimentStatus,
    UnitAttributes,
)


def hash_fraction(salt: str, unit: str) -> float:
    """A uniform number in [0, 1) fixed by (salt, unit): first 8 bytes of SHA-256."""
    digest = hashlib.sha256(f"{salt}\x1f{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def bucket_of(salt: str, unit: str, n_buckets: int = N_BUCKETS) -> int:
    """The bucket (0..n_buckets-1) of ``unit`` under ``salt``."""
    return min(int(hash_fraction(salt, unit) * n_buckets), n_buckets - 1)


def layer_bucket(layer: str, unit: str) -> int:
    """The unit's bucket in a layer; shared by every experiment of that layer."""
    return bucket_of(f"layer:{layer}", unit)


def assignment_unit(
    user_id: str | None,
    anonymous_id: str | None,
    aliases: MutableMapping[str, str] | None = None,
) -> str:
    """The key a unit is hashed by: the alias recorded for the user, else the anonymous id, else
    the user id. When a user id is present and has no alias yet, the key is recorded in
    ``aliases`` (first one wins), which keeps assignment sticky across login."""
    if user_id is None and anonymous_id is None:
        raise InvalidInput("a unit needs user_id or anonymous_id", field="user_id")
    if user_id is not None and aliases is not None and user_id in aliases:
        return aliases[user_id]
    key = f"anon:{anonymous_id}" if anonymous_id is not None else f"user:{user_id}"
    if user_id is not None and aliases is not None:
        aliases.setdefault(user_id, key)
    return key


@dataclass(frozen=True)
class Assignment:
    """Where a unit landed. ``variant`` is None for holdout units (served the control)."""

    experiment: str
    unit: str
    variant: str | None
    holdout: bool

    @property
    def served_variant(self) -> str | None:
        """The variant whose payload to serve; holdout units get none (default experience)."""
        return self.variant


def allocate_buckets(experiment: Experiment, others: Iterable[Experiment]) -> tuple[int, int]:
    """First free contiguous bucket range of the experiment's layer, of its traffic size.

    ``others`` are the layer's running experiments (their ``bucket_range`` is set); raises
    ``Conflict`` when the layer has no free range large enough.
    """
    size = experiment.n_buckets
    taken = sorted(
        o.bucket_range
        for o in others
        if o.layer == experiment.layer
        and o.name != experiment.name
        and o.status == ExperimentStatus.RUNNING
        and o.bucket_range is not None
    )
    start = 0
    for lo, hi in taken:
        if lo - start >= size:
            return (start, start + size)
        start = max(start, hi)
    if N_BUCKETS - start >= size:
        return (start, start + size)
    free = N_BUCKETS - sum(hi - lo for lo, hi in taken)
    raise Conflict(
        f"layer {experiment.layer!r} has no free range of {size} buckets ({free} free in total)",
        field="traffic",
        accepted=f"at most {free / N_BUCKETS:.4f} or another layer",
    )


def assign(
    experiment: Experiment,
    unit: str,
    attributes: UnitAttributes | None = None,
) -> Assignment | None:
    """Assign a unit key (see :func:`assignment_unit`); None when not running, not targeted or
    outside the experiment's bucket range."""
    if experiment.status != ExperimentStatus.RUNNING or experiment.bucket_range is None:
        return None
    if not experiment.targeting.matches(attributes or UnitAttributes()):
        return None
    lo, hi = experiment.bucket_range
    if not lo <= layer_bucket(experiment.layer, unit) < hi:
        return None
    salt = experiment.experiment_salt
    if experiment.holdout > 0 and hash_fraction(f"{salt}:holdout", unit) < experiment.holdout:
        return Assignment(experiment.name, unit, None, True)
    return Assignment(experiment.name, unit, pick_variant(experiment, unit), False)


def pick_variant(experiment: Experiment, unit: str) -> str:
    """The variant for a unit, by weight, from the experiment-salted hash."""
    total = sum(v.weight for v in experiment.variants)
    x = hash_fraction(f"{experiment.experiment_salt}:variant", unit) * total
    acc = 0.0
    for v in experiment.variants:
        acc += v.weight
        if x < acc:
            return v.name
    return experiment.variants[-1].name


def assign_in_layer(
    experiments: Iterable[Experiment],
    layer: str,
    unit: str,
    attributes: UnitAttributes | None = None,
) -> Assignment | None:
    """The (at most one) assignment of a unit among a layer's running experiments."""
    for exp in experiments:
        if exp.layer == layer:
            result = assign(exp, unit, attributes)
            if result is not None:
                return result
    return None
