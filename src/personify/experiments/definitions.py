"""Experiment definitions: variants, targeting, holdout, layer, metrics, status and horizon.

Build one with :func:`parse_experiment` to get :class:`~personify.domain.errors.InvalidInput`
errors that name the offending field instead of a raw pydantic error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from personify.domain._fields import LongText, Name, PropertyValue
from personify.domain.errors import InvalidInput

N_BUCKETS = 10_000
"""Buckets per layer: traffic shares are multiples of 0.01 %."""


class ExperimentStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"


class MetricKind(StrEnum):
    """How a metric is aggregated per unit, which decides the statistical test."""

    PROPORTION = "proportion"
    """0/1 per unit (converted or not): two-proportion z-test, Wilson / Newcombe intervals."""
    MEAN = "mean"
    """A value per unit, often skewed (revenue): Welch t-test and a bootstrap interval."""
    RATIO = "ratio"
    """Sum of numerators over sum of denominators (clicks / impressions): delta method."""


class Metric(BaseModel):
    """A metric the analysis compares; ``higher_is_better`` orients guardrails."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    kind: MetricKind = MetricKind.PROPORTION
    higher_is_better: bool = True


class Variant(BaseModel):
    """One arm: a relative traffic weight and the payload the serving side applies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    weight: float = Field(default=1.0, gt=0)
    payload: dict[str, PropertyValue] = Field(default_factory=dict)


@dataclass(frozen=True)
class UnitAttributes:
    """What targeting may look at for one unit (user or anonymous visitor)."""

    segments: frozenset[str] = field(default_factory=frozenset)
    country: str | None = None
    channel: str | None = None


class Targeting(BaseModel):
    """Who may enter: every non-empty list must match (segments: any of them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    segments: list[Name] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    channels: list[Name] = Field(default_factory=list)

    def matches(self, unit: UnitAttributes) -> bool:
        """True when the unit passes every predicate that is set."""
        if self.segments and not unit.segments.intersection(self.segments):
            return False
        if self.countries and (
            unit.country is None or unit.country.upper() not in {c.upper() for c in self.countries}
        ):
            return False
        return not (self.channels and unit.channel not in self.channels)


class Experiment(BaseModel):
    """An A/B/n test. The first variant is the control unless ``control`` names another.

    ``traffic`` is the share of the layer's buckets the experiment owns (set as ``bucket_range``
    when it starts); ``holdout`` is the share of entering units kept on the control experience and
    left out of the analysis. A fixed horizon (``planned_sample_size`` or ``end_at``) is required
    unless ``sequential`` is true, in which case always-valid (mSPRT) intervals allow peeking.
    """

    model_config = ConfigDict(extra="forbid")

    name: Name
    hypothesis: LongText = ""
    variants: list[Variant] = Field(min_length=2, max_length=26)
    control: Name | None = None
    traffic: float = Field(default=1.0, gt=0, le=1)
    targeting: Targeting = Field(default_factory=Targeting)
    holdout: float = Field(default=0.0, ge=0, lt=1)
    layer: Name = "default"
    salt: Name | None = None
    primary_metric: Metric
    guardrail_metrics: list[Metric] = Field(default_factory=list)
    status: ExperimentStatus = ExperimentStatus.DRAFT
    start_at: datetime | None = None
    stop_at: datetime | None = None
    planned_sample_size: int | None = Field(default=None, gt=0)
    end_at: datetime | None = None
    sequential: bool = False
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    bucket_range: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variants: names must be unique, got {names}")
        if self.control is not None and self.control not in names:
            raise ValueError(f"control: {self.control!r} is not one of the variants {names}")
        metric_names = [self.primary_metric.name, *(m.name for m in self.guardrail_metrics)]
        if len(set(metric_names)) != len(metric_names):
            raise ValueError(f"guardrail_metrics: metric names must be unique, got {metric_names}")
        if not self.sequential and self.planned_sample_size is None and self.end_at is None:
            raise ValueError(
                "planned_sample_size: a fixed horizon (planned_sample_size or end_at) is needed"
                " unless sequential is true"
            )
        if self.start_at and self.stop_at and self.stop_at < self.start_at:
            raise ValueError("stop_at: must not be before start_at")
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise ValueError("end_at: must be after start_at")
        if self.bucket_range is not None:
            lo, hi = self.bucket_range
            if not 0 <= lo < hi <= N_BUCKETS:
                raise ValueError(f"bucket_range: must satisfy 0 <= start < end <= {N_BUCKETS}")
        return self

    @property
    def control_name(self) -> str:
        return self.control or self.variants[0].name

    @property
    def experiment_salt(self) -> str:
        return self.salt or self.name

    @property
    def n_buckets(self) -> int:
        """How many buckets of its layer the experiment owns."""
        return max(1, round(self.traffic * N_BUCKETS))

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise InvalidInput(
            f"unknown variant {name!r}",
            field="variant",
            accepted=", ".join(v.name for v in self.variants),
        )


_FIELD_HINTS = {
    "planned_sample_size",
    "end_at",
    "control",
    "variants",
    "guardrail_metrics",
    "stop_at",
    "bucket_range",
}


def parse_experiment(data: Mapping[str, Any] | Experiment) -> Experiment:
    """Validate a definition; raise ``InvalidInput`` whose ``field`` is the offending path."""
    if isinstance(data, Experiment):
        data = data.model_dump()
    try:
        return Experiment.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        if not loc:
            head = message.split(":", 1)[0]
            loc = head if head in _FIELD_HINTS else "experiment"
        raise InvalidInput(
            f"invalid experiment field {loc!r}: {message}",
            field=loc,
            accepted=_accepted(loc),
            details={"errors": len(exc.errors())},
        ) from None


def _accepted(loc: str) -> str | None:
    hints = {
        "traffic": "a share in (0, 1]",
        "holdout": "a share in [0, 1)",
        "variants": "2..26 variants with unique names and positive weights",
        "planned_sample_size": "a positive number of units, or end_at, or sequential=true",
        "status": ", ".join(s.value for s in ExperimentStatus),
    }
    for key, text in hints.items():
        if loc == key or loc.startswith(key + "."):
            return text
    return None
