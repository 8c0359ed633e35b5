from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personify.domain.errors import InvalidInput
from personify.experiments.open_bandit import (
    frequency_action_dist,
    load_open_bandit,
    logged_action_dist,
)

pytestmark = pytest.mark.datasets


@pytest.fixture
def obd(datasets_dir: Path) -> Path:
    root = datasets_dir / "open_bandit_obd"
    if not root.exists():
        pytest.skip(f"no Open Bandit sample at {root}")
    return root


def test_loads_the_documented_click_counts(obd: Path) -> None:
    men = load_open_bandit(obd, "random", "men")
    assert men.log.n_rounds == 10_000 and men.log.n_actions == 34
    assert int(men.log.reward.sum()) == 46
    assert np.allclose(men.log.pscore, 1 / 34)
    assert set(np.unique(men.log.position)) == {0, 1, 2}
    assert men.log.context is not None and np.all(men.log.context.sum(axis=1) == 4)
    with pytest.raises(InvalidInput):
        load_open_bandit(obd, "random", "kids")


def test_bts_distributions_are_proper(obd: Path) -> None:
    rnd = load_open_bandit(obd, "random", "women")
    bts = load_open_bandit(obd, "bts", "women")
    assert rnd.log.position is not None
    freq = frequency_action_dist(bts, rnd.log.position)
    near, raw = logged_action_dist(bts, rnd.times[:500], rnd.log.position[:500])
    assert np.allclose(freq.sum(axis=1), 1) and np.allclose(near.sum(axis=1), 1)
    assert np.median(raw) > 0.8  # the logged propensities nearly cover each round's distribution
