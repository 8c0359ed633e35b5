from __future__ import annotations

from collections import Counter

import pytest

from personify.domain.errors import Conflict
from personify.experiments.assignment import (
    allocate_buckets,
    assign,
    assign_in_layer,
    assignment_unit,
    bucket_of,
)
from personify.experiments.definitions import Experiment, ExperimentStatus, UnitAttributes


def running(name: str, *, traffic: float = 1.0, layer: str = "default", **kw: object) -> Experiment:
    exp = Experiment.model_validate(
        {
            "name": name,
            "variants": kw.pop("variants", [{"name": "A"}, {"name": "B"}]),
            "primary_metric": {"name": "conversion"},
            "planned_sample_size": 100,
            "traffic": traffic,
            "layer": layer,
            **kw,
        }
    )
    rng = allocate_buckets(exp, [])
    return exp.model_copy(update={"status": ExperimentStatus.RUNNING, "bucket_range": rng})


def test_buckets_are_deterministic_and_salted() -> None:
    assert bucket_of("s", "u1") == bucket_of("s", "u1")
    differing = sum(bucket_of("s1", f"u{i}") != bucket_of("s2", f"u{i}") for i in range(200))
    assert differing > 190


def test_weights_are_respected() -> None:
    exp = running("w", variants=[{"name": "A", "weight": 3}, {"name": "B", "weight": 1}])
    counts = Counter(assign(exp, f"user:{i}").variant for i in range(8000))  # type: ignore[union-attr]
    assert counts["A"] / 8000 == pytest.approx(0.75, abs=0.02)


def test_holdout_share_and_not_running() -> None:
    exp = running("h", holdout=0.2)
    results = [assign(exp, f"user:{i}") for i in range(5000)]
    held = sum(r is not None and r.holdout for r in results)
    assert held / 5000 == pytest.approx(0.2, abs=0.02)
    assert all(r is not None and (r.variant is None) == r.holdout for r in results)
    draft = exp.model_copy(update={"status": ExperimentStatus.DRAFT})
    assert assign(draft, "user:1") is None


def test_layer_experiments_never_share_a_unit() -> None:
    first = running("one", traffic=0.5)
    second = Experiment.model_validate(
        {**first.model_dump(), "name": "two", "status": "draft", "bucket_range": None}
    )
    second = second.model_copy(
        update={
            "status": ExperimentStatus.RUNNING,
            "bucket_range": allocate_buckets(second, [first]),
        }
    )
    assert second.bucket_range == (5000, 10_000)
    units = [f"anon:{i}" for i in range(4000)]
    in_first = {u for u in units if assign(first, u) is not None}
    in_second = {u for u in units if assign(second, u) is not None}
    assert not in_first & in_second
    assert len(in_first | in_second) == len(units)
    assert assign_in_layer([first, second], "default", units[0]) is not None
    third = Experiment.model_validate(
        {
            **first.model_dump(),
            "name": "three",
            "status": "draft",
            "bucket_range": None,
            "traffic": 0.1,
        }
    )
    with pytest.raises(Conflict) as err:
        allocate_buckets(third, [first, second])
    assert err.value.field == "traffic"


def test_other_layers_are_independent() -> None:
    a = running("a", layer="ranking", traffic=0.5)
    b = running("b", layer="email", traffic=0.5)
    units = [f"user:{i}" for i in range(4000)]
    both = sum(assign(a, u) is not None and assign(b, u) is not None for u in units)
    assert both / 4000 == pytest.approx(0.25, abs=0.03)


def test_sticky_across_login_through_alias_map() -> None:
    exp = running("sticky")
    aliases: dict[str, str] = {}
    before = assign(exp, assignment_unit(None, "device-1", aliases))
    at_login = assign(exp, assignment_unit("alice", "device-1", aliases))
    other_device = assign(exp, assignment_unit("alice", "device-2", aliases))
    assert aliases == {"alice": "anon:device-1"}
    assert before is not None and at_login is not None and other_device is not None
    assert before.variant == at_login.variant == other_device.variant
    assert other_device.unit == "anon:device-1"


def test_targeting_filters_units() -> None:
    exp = running("t", targeting={"countries": ["DE"]})
    assert assign(exp, "user:1", UnitAttributes(country="FR")) is None
    assert assign(exp, "user:1", UnitAttributes(country="DE")) is not None
