"""Journeys as data: a trigger, steps (wait / condition / send), goal exits and a re-entry
policy, loaded from YAML or JSON and validated so errors name the offending path."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from personify.domain.errors import InvalidInput
from personify.messaging.conditions import Condition, Duration
from personify.messaging.message_tests import MessageMetric, MessageVariant, check_test

MAX_VIEWED_WITHIN = timedelta(days=90)
"""The longest ``viewed_within`` of an item-update trigger (views are kept this long)."""

StepId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Trigger(_Strict):
    """What starts a run; exactly one of ``event``, ``item_update``, ``inactive_for``,
    ``birthday`` or ``segment``."""

    event: str | None = None
    where: list[Condition] = Field(default_factory=list)
    min_count: int = Field(default=1, ge=1, le=1000)
    window: Duration | None = None
    same_item: bool = False
    item_update: Literal["price_drop", "back_in_stock", "new_for_you"] | None = None
    min_drop_percent: float = Field(default=0.0, ge=0, le=100)
    viewed_within: Duration = Field(
        default=timedelta(days=14), description="item updates reach people who viewed the item"
        " this recently"
    )
    inactive_for: Duration | None = None
    birthday: bool = False
    segment: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        kinds = [
            self.event is not None,
            self.item_update is not None,
            self.inactive_for is not None,
            self.birthday,
            self.segment is not None,
        ]
        if sum(kinds) != 1:
            raise ValueError(
                "a trigger needs exactly one of: event, item_update, inactive_for, birthday,"
                " segment"
            )
        if not timedelta(minutes=1) <= self.viewed_within <= MAX_VIEWED_WITHIN:
            raise ValueError(
                f"viewed_within must be between 1m and {MAX_VIEWED_WITHIN.days}d"
            )
        return self


class EventsSince(_Strict):
    """Counts the person's events of ``type`` since they entered the run: at least ``min``
    (default 1, or 0 when only ``max`` is given) and at most ``max``."""

    type: str
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    def holds(self, count: int) -> bool:
        low = self.min if self.min is not None else (0 if self.max is not None else 1)
        return count >= low and (self.max is None or count <= self.max)


class WaitStep(_Strict):
    type: Literal["wait"]
    id: StepId
    duration: Duration | None = None
    until: Literal["best_time"] | None = None
    within: Duration = timedelta(hours=24)

    @model_validator(mode="after")
    def _one_wait(self) -> WaitStep:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a wait needs exactly one of duration or until: best_time")
        return self


class ConditionStep(_Strict):
    type: Literal["condition"]
    id: StepId
    all: list[Condition] = Field(default_factory=list)
    events_since_entry: EventsSince | None = None
    then: str = "next"
    otherwise: str = Field(default="exit", alias="else")


class SendStep(_Strict):
    type: Literal["send"]
    id: StepId
    template: str = Field(min_length=1, max_length=64)
    channel: str = "email"
    discount_percent: float | None = Field(default=None, gt=0, le=100)
    transactional: bool = False
    purpose: str | None = None
    variants: list[MessageVariant] | None = Field(
        default=None, max_length=26,
        description="an A/B/n test of this step's message: 2..26 variants (template, subject, "
        "tone; the step's template where unset), assigned per person by the experiments "
        "engine and analysed with the campaigns' statistics",
    )
    primary_metric: MessageMetric = "clicks"

    @model_validator(mode="after")
    def _test(self) -> SendStep:
        if self.variants is None:
            return self
        try:
            check_test(self.variants, None)
        except InvalidInput as exc:
            raise ValueError(f"{exc.field}: {exc.message}") from exc
        timed = [v.name for v in self.variants if v.send_at is not None]
        if timed:
            raise ValueError(f"variants.send_at: a journey step sends when it is reached; "
                             f"drop send_at from {timed}")
        return self


Step = Annotated[WaitStep | ConditionStep | SendStep, Field(discriminator="type")]


class Reentry(_Strict):
    policy: Literal["never", "after_exit"] = "after_exit"
    cooldown: Duration = timedelta(0)


class JourneyDefinition(_Strict):
    """One journey (see docs/messaging.md for the format)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    trigger: Trigger
    steps: list[Step] = Field(min_length=1, max_length=50)
    exit_on: list[str] = Field(default_factory=list, description="goal event types")
    reentry: Reentry = Field(default_factory=Reentry)
    consent_purpose: str | None = "email_marketing"

    @model_validator(mode="after")
    def _targets_exist(self) -> JourneyDefinition:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("step ids must be unique")
        for step in self.steps:
            if isinstance(step, ConditionStep):
                for target in (step.then, step.otherwise):
                    if target not in ("next", "exit", "end") and target not in ids:
                        raise ValueError(
                            f"step {step.id!r} jumps to unknown step {target!r}"
                            " (use a step id, 'next', 'end' or 'exit')"
                        )
        return self

    def index_of(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.id == step_id)


def parse_journey(data: Any, *, source: str = "journey") -> JourneyDefinition:
    """Validate a parsed document; :class:`InvalidInput` names the path (``steps.1.duration``)."""
    try:
        return JourneyDefinition.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        path = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(
            f"{source}: invalid journey at {path}: {first['msg']}",
            field=path,
            accepted="see docs/messaging.md (journeys)",
            details={
                "errors": [
                    {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                    for e in errors
                ]
            },
        ) from exc


def load_journey(path: str | Path) -> JourneyDefinition:
    """Load one journey from a ``.yaml`` / ``.yml`` / ``.json`` file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path.name}: not valid YAML / JSON: {exc}", field="file") from exc
    return parse_journey(data, source=path.name)


def builtin_journeys() -> dict[str, JourneyDefinition]:
    """The example journeys shipped in ``personify/messaging/journeys_builtin``."""
    folder = resources.files("personify.messaging") / "journeys_builtin"
    found: dict[str, JourneyDefinition] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            journey = parse_journey(
                yaml.safe_load(entry.read_text(encoding="utf-8")), source=entry.name
            )
            found[journey.name] = journey
    return found
