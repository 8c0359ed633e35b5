from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personify.domain.errors import Conflict
from personify.domain.events import Event
from personify.experiments.memory import InMemoryExperimentStore, InMemoryExposureLog
from personify.experiments.service import (
    assign_unit,
    create_experiment,
    experiment_report,
    log_exposure,
    start_experiment,
    stop_experiment,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def test_end_to_end_only_exposed_units_are_analyzed(tmp_path: Path) -> None:
    store, log = InMemoryExperimentStore(), InMemoryExposureLog()
    create_experiment(
        store,
        "t1",
        {
            "name": "blocks",
            "variants": [{"name": "control"}, {"name": "reco"}],
            "primary_metric": {"name": "ctr", "kind": "ratio"},
            "guardrail_metrics": [{"name": "conversion"}],
            "planned_sample_size": 50,
        },
    )
    with pytest.raises(Conflict):
        create_experiment(
            store,
            "t1",
            {
                "name": "blocks",
                "variants": [{"name": "a"}, {"name": "b"}],
                "primary_metric": {"name": "ctr"},
                "sequential": True,
            },
        )
    exp = start_experiment(store, "t1", "blocks", now=T0)
    assert exp.bucket_range == (0, 10_000)
    aliases: dict[str, str] = {}
    events: list[Event] = []
    exposed = 0
    for i in range(400):
        (a,) = assign_unit(store, "t1", user_id=None, anonymous_id=f"v{i}", aliases=aliases)
        ts = T0 + timedelta(minutes=i)
        rec = f"r{i}"
        events.append(
            Event(
                event_id=f"i{i}",
                type="impression",
                anonymous_id=f"v{i}",
                item_ids=["x"],
                recommendation_id=rec,
                timestamp=ts,
            )
        )
        if i % 4 != 0:  # a quarter are assigned but never served: not exposed
            exposed += log_exposure(log, "t1", a, timestamp=ts, recommendation_id=rec)
        clicked = (i % 3 == 0) if a.variant == "reco" else (i % 10 == 0)
        if clicked:
            events.append(
                Event(
                    event_id=f"c{i}",
                    type="click",
                    anonymous_id=f"v{i}",
                    item_id="x",
                    recommendation_id=rec,
                    timestamp=ts + timedelta(seconds=5),
                )
            )
    assert not log_exposure(log, "t1", a, timestamp=T0)  # the first exposure only
    result, files = experiment_report(store, log, "t1", "blocks", events, out_dir=tmp_path)
    assert sum(result.units.values()) == exposed == 300
    ctr = result.for_metric("ctr")[0]
    assert ctr.variant_value > ctr.control_value and ctr.significant(0.05)
    assert files["plot"].exists()
    stopped = stop_experiment(store, "t1", "blocks", now=T0 + timedelta(days=1))
    assert stopped.status == "stopped"
    assert assign_unit(store, "t1", user_id="u", anonymous_id=None, aliases=aliases) == []
