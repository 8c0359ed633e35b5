"""``/v1/decisions``: rank a few actions (offers, creatives, layouts) for a context with a
contextual bandit, with logged propensities. Rewards are ordinary events whose
``recommendation_id`` is the returned ``decision_id``
(see :mod:`personify.runtime.decision_points`). Configuring a decision point needs the
``admin`` scope; deciding needs ``serve``. Every API process on the same database learns from
every reward (a shared update log)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from personify.api.deps import AdminKey, ExperimentsDep, ServeKey
from personify.api.routing import KeyFirstRoute
from personify.domain._fields import Identifier, Name, PropertyValue
from personify.runtime.decision_points import DecisionPointConfig, context_features

router = APIRouter(prefix="/v1/decisions", tags=["decisions"], route_class=KeyFirstRoute)

MAX_ACTIONS = 500


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    features: dict[Name, PropertyValue] = Field(
        default_factory=dict,
        description="accepted but not used yet: the policies learn one model per action id",
    )


class DecisionIn(BaseModel):
    """Rank ``k`` of ``actions`` at decision point ``point`` for this context."""

    model_config = ConfigDict(extra="forbid")

    point: Name
    context: dict[Name, PropertyValue] = Field(
        default_factory=dict,
        max_length=200,
        description="named features: numbers are used as is, strings one-hot (name=value)",
    )
    actions: list[ActionIn] = Field(min_length=1, max_length=MAX_ACTIONS)
    k: int = Field(default=1, ge=1, le=MAX_ACTIONS, description="slate size")

    @model_validator(mode="after")
    def _slate(self) -> DecisionIn:
        ids = [a.id for a in self.actions]
        if len(set(ids)) != len(ids):
            raise ValueError("action ids must be unique")
        if self.k > len(ids):
            raise ValueError(f"k ({self.k}) exceeds the number of actions ({len(ids)})")
        return self


class RankedActionOut(BaseModel):
    id: str
    rank: int
    propensity: float = Field(description="probability of this choice given the ranks above")
    score: float


class DecisionOut(BaseModel):
    decision_id: str = Field(description="send it as recommendation_id on reward events")
    point: str
    policy: str
    actions: list[RankedActionOut]
    warnings: list[str] = Field(default_factory=list)


class DecisionPointOut(BaseModel):
    point: str
    config: DecisionPointConfig
    actions_learned: list[str]
    updates: int = Field(
        description="policy updates the live policy holds, claimed by any process on the "
        "database (each decision's action counts once: its reward, or 0 when the window closed)"
    )
    open_decisions: int = Field(
        description="decisions this process holds still inside their reward window"
    )
    log_position: int = Field(
        0, description="the newest shared update-log row this process has replayed"
    )


class DecisionPointsOut(BaseModel):
    points: list[str]


@router.post("", response_model=DecisionOut, summary="Rank actions for a context (bandit)")
def decide(body: DecisionIn, key: ServeKey, runtime: ExperimentsDep) -> DecisionOut:
    features = context_features(body.context)
    outcome = runtime.points.decide(
        key.tenant, body.point, features, [a.id for a in body.actions], body.k
    )
    d = outcome.decision
    warnings = (
        ["action features are not used yet: the policy learns one model per action id"]
        if any(a.features for a in body.actions)
        else []
    )
    return DecisionOut(
        decision_id=d.decision_id,
        point=outcome.point,
        policy=outcome.policy,
        actions=[
            RankedActionOut(id=a, rank=i + 1, propensity=p, score=s)
            for i, (a, p, s) in enumerate(zip(d.ranked, d.propensities, d.scores, strict=True))
        ],
        warnings=warnings,
    )


@router.get("", response_model=DecisionPointsOut, summary="The tenant's decision points")
def list_points(key: AdminKey, runtime: ExperimentsDep) -> DecisionPointsOut:
    return DecisionPointsOut(points=runtime.points.points(key.tenant))


@router.post(
    "/{point}",
    response_model=DecisionPointOut,
    summary="Configure a decision point (policy, exploration, rewards); resets its learning",
)
def configure(
    point: Name, body: DecisionPointConfig, key: AdminKey, runtime: ExperimentsDep
) -> DecisionPointOut:
    runtime.points.configure(key.tenant, point, body)
    return _describe(runtime.points.describe(key.tenant, point))


@router.get("/{point}", response_model=DecisionPointOut, summary="A decision point's state")
def describe(point: Name, key: AdminKey, runtime: ExperimentsDep) -> DecisionPointOut:
    return _describe(runtime.points.describe(key.tenant, point))


def _describe(info: dict[str, Any]) -> DecisionPointOut:
    return DecisionPointOut.model_validate(info)
