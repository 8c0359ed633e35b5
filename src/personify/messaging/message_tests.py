"""A/B/n tests of messages: a campaign with variants (subject, template, tone, send time),
assigned and analysed by the experiments engine.

* Assignment is :func:`personify.experiments.assignment.assign` over an
  :class:`~personify.experiments.definitions.Experiment` built from the campaign
  (:func:`experiment_of`): deterministic per (campaign, person), by the variants' weights. With a
  ``winner`` rule the experiment's *holdout* is the share kept back from the test: those people
  get nothing until the winner is chosen, then the winner.
* Analysis is :func:`personify.experiments.analysis.analyze` over per-recipient samples built from
  the event log (:func:`samples_from_sends`): the outbox's ``message_sent`` events of the test
  phase are the exposures; ``email_open`` / ``email_click`` events (carrying the message id)
  and purchases after the send are the outcomes; an unsubscribe (the person is suppressed on the
  channel) is the guardrail.
* The winner (:func:`choose_winner`) is the variant significantly better than the control on
  the primary metric (the best of them when several are), unless it significantly worsens
  unsubscribes; without one, ``if_no_winner`` decides: ``control`` (the default) sends the
  control, ``best_observed`` the variant with the best observed value, ``none`` sends nothing
  to the rest.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from personify.domain._fields import Name
from personify.domain.errors import InvalidInput
from personify.domain.events import Event, EventType
from personify.experiments.analysis import ExperimentResult, MetricSamples, analyze, verdict
from personify.experiments.assignment import assign
from personify.experiments.definitions import (
    N_BUCKETS,
    Experiment,
    ExperimentStatus,
    Metric,
    MetricKind,
    Variant,
)
from personify.experiments.kpis import event_revenue
from personify.messaging.conditions import Duration
from personify.messaging.templates import Tone

MessageMetric = Literal["opens", "clicks", "conversion", "revenue"]
METRICS: dict[str, MetricKind] = {
    "opens": MetricKind.PROPORTION,
    "clicks": MetricKind.PROPORTION,
    "conversion": MetricKind.PROPORTION,
    "revenue": MetricKind.MEAN,
    "unsubscribes": MetricKind.PROPORTION,
}
"""Per recipient: opened, clicked, purchased after the send (0/1), revenue after the send,
unsubscribed from the channel (0/1, the guardrail: lower is better)."""
GUARDRAIL = "unsubscribes"
TEST_PHASE, REST_PHASE = "test", "rest"
WEIGHT_TOLERANCE = 1e-6


class MessageVariant(BaseModel):
    """One arm of a message test; what it leaves out is the campaign's."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    weight: float | None = Field(
        default=None, gt=0, le=1,
        description="share of the tested people; all or none given, summing to 1",
    )
    template: str | None = Field(default=None, min_length=1, max_length=64)
    subject: str | None = Field(
        default=None, min_length=1, max_length=1_000,
        description="a subject line (template syntax) replacing the template's",
    )
    tone: Tone | None = Field(default=None, description="formal / informal, overriding the "
                                                        "person's tone")
    send_at: datetime | None = Field(default=None, description="this variant's send time")


class WinnerRule(BaseModel):
    """Test on a share, then send the winner to the rest."""

    model_config = ConfigDict(extra="forbid")

    test_share: float = Field(gt=0, lt=1, description="share of the audience in the test")
    after: Duration = Field(
        default=timedelta(hours=24),
        description="decide this long after the test's last send time",
    )
    min_recipients: int | None = Field(
        default=None, gt=0,
        description="decide earlier once every variant was sent to this many people",
    )
    if_no_winner: Literal["control", "best_observed", "none"] = "control"


@dataclass(frozen=True)
class ArmPlan:
    """What one variant sends: template, subject / tone overrides, send time."""

    name: str
    template: str
    subject: str | None
    tone: str | None
    send_at: datetime


def check_test(
    variants: list[MessageVariant] | None, winner: WinnerRule | None
) -> None:
    """Refuse a malformed test with an error naming the field."""
    if variants is None:
        if winner is not None:
            raise InvalidInput(
                "a winner rule needs variants to choose from", field="winner",
                accepted="variants (2..26) or no winner rule",
            )
        return
    if len(variants) < 2:
        raise InvalidInput(
            f"a message test needs at least 2 variants, got {len(variants)}", field="variants",
            accepted="2..26 variants (or leave variants out for a plain campaign)",
        )
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise InvalidInput(f"variant names must be unique, got {names}", field="variants.name",
                           accepted="unique names")
    weights = [v.weight for v in variants]
    given = [w for w in weights if w is not None]
    if given and len(given) != len(weights):
        missing = next(i for i, w in enumerate(weights) if w is None)
        raise InvalidInput(
            "give every variant a weight or none", field=f"variants.{missing}.weight",
            accepted="weights on all variants summing to 1, or on none (equal shares)",
        )
    if given and abs(sum(given) - 1.0) > WEIGHT_TOLERANCE:
        raise InvalidInput(
            f"variant weights must sum to 1, they sum to {sum(given):.6g}",
            field="variants.weight", accepted="weights summing to 1 (e.g. 0.5, 0.3, 0.2)",
        )


def weights_of(variants: Sequence[MessageVariant]) -> list[float]:
    given = [v.weight for v in variants]
    if all(w is None for w in given):
        return [1.0 / len(variants)] * len(variants)
    return [float(w or 0.0) for w in given]


def experiment_of(
    name: str,
    variants: Sequence[MessageVariant],
    primary_metric: str,
    winner: WinnerRule | None,
    *,
    start: datetime,
    end: datetime,
) -> Experiment:
    """The running experiment the campaign's people are assigned through (never stored: it is
    rebuilt from the campaign whenever needed, so assignment never changes)."""
    return Experiment(
        name=name,
        variants=[
            Variant(name=v.name, weight=w) for v, w in zip(variants, weights_of(variants),
                                                           strict=True)
        ],
        holdout=(1.0 - winner.test_share) if winner is not None else 0.0,
        layer="messages",
        salt=f"msg:{name}"[:64],
        primary_metric=Metric(name=primary_metric, kind=METRICS[primary_metric]),
        guardrail_metrics=[
            Metric(name=m, kind=k, higher_is_better=m != GUARDRAIL)
            for m, k in METRICS.items()
            if m != primary_metric
        ],
        status=ExperimentStatus.RUNNING,
        bucket_range=(0, N_BUCKETS),
        start_at=start,
        end_at=max(end, start + timedelta(seconds=1)),
        planned_sample_size=winner.min_recipients if winner is not None else None,
    )


JOURNEY_TEST_SPAN = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
"""A journey step's test runs as long as the step exists (assignment never depends on it)."""


def step_test_name(journey: str, step_id: str) -> str:
    """The test name of a journey step with variants: ``journey:<journey>:<step>`` (hashed
    when longer than an experiment name may be); the ``campaign`` property of its sends."""
    name = f"journey:{journey}:{step_id}"
    if len(name) <= 64:
        return name
    return "journey:" + hashlib.sha256(name.encode()).hexdigest()[:32]


def step_experiment(
    journey: str, step_id: str, variants: Sequence[MessageVariant], primary_metric: str
) -> Experiment:
    """The experiment assigning a journey step's recipients to its variants: the message
    test machinery of campaigns, without a winner rule (every recipient is tested)."""
    start, end = JOURNEY_TEST_SPAN
    return experiment_of(step_test_name(journey, step_id), variants, primary_metric, None,
                         start=start, end=end)


def variant_for(experiment: Experiment, user_id: str) -> str | None:
    """The person's variant, or None when they are held back for the winner."""
    got = assign(experiment, f"user:{user_id}")
    return None if got is None else got.variant


@dataclass
class _Recipient:
    variant: str
    message_id: str
    sent_at: datetime
    opened: bool = False
    clicked: bool = False
    purchased: bool = False
    revenue: float = 0.0
    unsubscribed: bool = False


@dataclass
class TestData:
    """Per-recipient outcomes of the test phase and their totals per variant."""

    samples: dict[str, dict[str, MetricSamples]]
    totals: dict[str, dict[str, float]] = field(default_factory=dict)


def samples_from_sends(
    campaign: str,
    variants: Sequence[str],
    events: Iterable[Event],
    *,
    unsubscribed: Callable[[str], bool],
    until: datetime | None = None,
) -> TestData:
    """Outcomes per test recipient from the event log (``message_sent`` of this campaign's
    test phase, then opens, clicks and purchases) and ``unsubscribed(user_id)``."""
    recipients: dict[str, _Recipient] = {}
    by_message: dict[str, str] = {}
    later: list[Event] = []
    for e in events:
        if until is not None and e.timestamp > until:
            continue
        props = e.properties or {}
        if e.type == EventType.MESSAGE_SENT:
            if props.get("campaign") == campaign and props.get("phase") == TEST_PHASE \
                    and e.user_id is not None and props.get("variant") in variants:
                message_id = str(props.get("message_id"))
                recipients.setdefault(
                    e.user_id, _Recipient(str(props["variant"]), message_id, e.timestamp)
                )
                by_message[message_id] = e.user_id
        else:
            later.append(e)
    for e in later:
        props = e.properties or {}
        if e.type in (EventType.EMAIL_OPEN, EventType.EMAIL_CLICK):
            user = by_message.get(str(props.get("message_id")))
            if user is None:
                continue
            if e.type == EventType.EMAIL_OPEN:
                recipients[user].opened = True
            else:
                recipients[user].clicked = recipients[user].opened = True
        elif e.type == EventType.PURCHASE and e.user_id in recipients:
            r = recipients[e.user_id]
            if e.timestamp >= r.sent_at:
                r.purchased = True
                r.revenue += event_revenue(e)
    for user, r in recipients.items():
        r.unsubscribed = unsubscribed(user)
    samples: dict[str, dict[str, MetricSamples]] = {}
    totals: dict[str, dict[str, float]] = {}
    for variant in variants:
        rows = [r for r in recipients.values() if r.variant == variant]
        values = {
            "opens": [float(r.opened) for r in rows],
            "clicks": [float(r.clicked) for r in rows],
            "conversion": [float(r.purchased) for r in rows],
            "revenue": [r.revenue for r in rows],
            "unsubscribes": [float(r.unsubscribed) for r in rows],
        }
        samples[variant] = {m: MetricSamples(values=np.asarray(v, dtype=float))
                            for m, v in values.items()}
        totals[variant] = {"sent": float(len(rows)), **{m: float(sum(v))
                                                         for m, v in values.items()}}
    return TestData(samples, totals)


@dataclass(frozen=True)
class Decision:
    """What the test decided: the variant the rest get (None: nobody) and why."""

    winner: str | None
    significant: bool
    reason: str


def choose_winner(result: ExperimentResult, experiment: Experiment, rule: str) -> Decision:
    """The winner on the primary metric (see the module docstring)."""
    alpha = result.alpha
    primary = result.for_metric(result.primary_metric)
    hurt = {
        c.variant for c in result.for_metric(GUARDRAIL) if c.diff > 0 and c.significant(alpha)
    }
    better = [c for c in primary if c.diff > 0 and c.significant(alpha) and c.variant not in hurt]
    if better:
        best = max(better, key=lambda c: c.diff)
        return Decision(
            best.variant, True,
            f"{best.variant} beats {best.control} on {best.metric} "
            f"({_pct(best.variant_value)} vs {_pct(best.control_value)}, "
            f"p = {best.p_adjusted:.3g})",
        )
    none = f"no variant is significantly better than {result.control} on {result.primary_metric}"
    if rule == "none":
        return Decision(None, False, none + "; rule if_no_winner=none: the rest get nothing")
    if rule == "best_observed" and primary:
        top = max(primary, key=lambda c: c.variant_value)
        pick = top.variant if top.variant_value > top.control_value else result.control
        return Decision(pick, False, none + f"; rule if_no_winner=best_observed: {pick}")
    return Decision(result.control, False,
                    none + f"; rule if_no_winner=control: {result.control}")


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.2f} %"


MIN_RECIPIENTS = 2
"""Recipients each variant needs before the statistics are computed."""


def analyse_test(
    experiment: Experiment, data: TestData, *, now: datetime
) -> ExperimentResult | None:
    """The experiments engine's analysis of every metric, with a verdict that treats only
    unsubscribes as the guardrail (the other metrics are reported, not guarded); None while a
    variant has fewer than :data:`MIN_RECIPIENTS` recipients."""
    if min(len(s["clicks"].values) for s in data.samples.values()) < MIN_RECIPIENTS:
        return None
    result = analyze(experiment, data.samples, now=now)
    result.guardrails = [GUARDRAIL]
    guarded = experiment.model_copy(update={"guardrail_metrics": [
        m for m in experiment.guardrail_metrics if m.name == GUARDRAIL
    ]})
    result.verdict = verdict(result, guarded)
    return result


def result_document(
    experiment: Experiment,
    result: ExperimentResult | None,
    data: TestData,
    decision: dict[str, Any] | None,
) -> dict[str, Any]:
    """A JSON-ready report: per-variant totals and rates, every comparison, the verdict."""
    variants = []
    for name, totals in data.totals.items():
        sent = totals["sent"]
        rate = {m: (totals[m] / sent if sent else None) for m in METRICS}
        variants.append({
            "name": name, "sent": int(sent),
            "opens": int(totals["opens"]), "clicks": int(totals["clicks"]),
            "conversions": int(totals["conversion"]), "revenue": round(totals["revenue"], 2),
            "unsubscribes": int(totals["unsubscribes"]),
            "open_rate": rate["opens"], "click_rate": rate["clicks"],
            "conversion_rate": rate["conversion"], "revenue_per_recipient": rate["revenue"],
            "unsubscribe_rate": rate["unsubscribes"],
        })
    final = result is not None and result.final
    comparisons = [
        {
            "metric": c.metric, "variant": c.variant, "control": c.control, "method": c.method,
            "control_value": _num(c.control_value), "variant_value": _num(c.variant_value),
            "lift": _num(c.lift), "lift_ci": [_num(c.lift_ci[0]), _num(c.lift_ci[1])],
            "p_value": _num(c.p_value), "p_adjusted": _num(c.p_adjusted),
            "significant": bool(final and c.significant(experiment.alpha)),
        }
        for c in (result.comparisons if result is not None else [])
    ]
    return {
        "control": experiment.control_name, "primary_metric": experiment.primary_metric.name,
        "final": final, "alpha": experiment.alpha,
        "verdict": result.verdict if result is not None else
        f"too few recipients yet (each variant needs {MIN_RECIPIENTS})",
        "sample_ratio_ok": result.srm.ok if result is not None else True,
        "variants": variants, "comparisons": comparisons, "decision": decision,
    }


def _num(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else float(x)
