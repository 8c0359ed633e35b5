from __future__ import annotations

import pytest

from personify.domain.errors import InvalidInput
from personify.experiments.definitions import (
    Experiment,
    Targeting,
    UnitAttributes,
    parse_experiment,
)


def definition(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "reco-vs-pop",
        "hypothesis": "personalized blocks raise conversion",
        "variants": [
            {"name": "control", "payload": {"personalized": False}},
            {"name": "ease", "weight": 1, "payload": {"model": "ease"}},
        ],
        "primary_metric": {"name": "conversion", "kind": "proportion"},
        "planned_sample_size": 1000,
    }
    base.update(overrides)
    return base


def test_valid_definition_defaults_to_first_variant_as_control() -> None:
    exp = parse_experiment(definition())
    assert isinstance(exp, Experiment)
    assert exp.control_name == "control"
    assert exp.variant("ease").payload == {"model": "ease"}
    assert exp.n_buckets == 10_000


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"traffic": 1.5}, "traffic"),
        ({"holdout": 1.0}, "holdout"),
        ({"variants": [{"name": "only"}]}, "variants"),
        ({"variants": [{"name": "a"}, {"name": "a"}]}, "variants"),
        ({"variants": [{"name": "a"}, {"name": "b", "weight": 0}]}, "variants.1.weight"),
        ({"control": "nope"}, "control"),
        ({"planned_sample_size": None}, "planned_sample_size"),
        ({"status": "paused"}, "status"),
    ],
)
def test_invalid_definitions_name_the_field(override: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_experiment(definition(**override))
    assert err.value.field == field


def test_sequential_experiment_needs_no_fixed_horizon() -> None:
    exp = parse_experiment(definition(planned_sample_size=None, sequential=True))
    assert exp.sequential


def test_targeting_requires_every_set_predicate() -> None:
    t = Targeting(segments=["vip"], countries=["de"], channels=["web"])
    assert t.matches(UnitAttributes(frozenset({"vip", "x"}), "DE", "web"))
    assert not t.matches(UnitAttributes(frozenset({"x"}), "DE", "web"))
    assert not t.matches(UnitAttributes(frozenset({"vip"}), "FR", "web"))
    assert not t.matches(UnitAttributes(frozenset({"vip"}), "DE", "email"))
    assert Targeting().matches(UnitAttributes())
