"""A simulated professional network where a connection needs both sides.

Each person has topics, a fame level and an openness that falls with fame (experts everyone wants
answer few). The true interest of ``x`` in ``y`` is
``sigmoid(base + fit·cos(topics) + pull·fame(y) + open·openness(x))``. A history of encounters
(each person meets a few random others, acts towards them with that probability) trains the same
directional model the service uses; then every person gets ``k`` recommendations from the
reciprocal and from the one-sided ranking. A recommended person is *requested* with probability
``interest(a, b)`` and *accepts* with probability ``interest(b, a)``: the acceptance rate is
accepted / requested, computed in expectation per person and bootstrapped over people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from personify.networking.evaluation import bootstrap_interval
from personify.networking.recommender import Mode, PeopleRecommender
from personify.networking.state import Interaction, build_state
from personify.networking.training import fit_directional


@dataclass(frozen=True, slots=True)
class NetworkSimConfig:
    people: int = 300
    topics: int = 6
    encounters: int = 25
    """random encounters per person in the history."""
    k: int = 10
    base: float = -3.0
    fit: float = 3.0
    pull: float = 1.5
    openness: float = 1.5
    seed: int = 0


def _interest(
    cfg: NetworkSimConfig,
    topics: NDArray[np.float64],
    fame: NDArray[np.float64],
    openness: NDArray[np.float64],
) -> NDArray[np.float64]:
    unit = topics / np.linalg.norm(topics, axis=1, keepdims=True)
    logit = (
        cfg.base
        + cfg.fit * (unit @ unit.T)
        + cfg.pull * fame[None, :]
        + cfg.openness * openness[:, None]
    )
    interest = 1.0 / (1.0 + np.exp(-logit))
    np.fill_diagonal(interest, 0.0)
    return interest


def simulate_network(cfg: NetworkSimConfig = NetworkSimConfig()) -> dict[str, Any]:
    rng = np.random.default_rng(cfg.seed)
    n = cfg.people
    topics = rng.dirichlet(np.full(cfg.topics, 0.3), size=n) + 1e-6
    fame = rng.standard_normal(n)
    openness = -fame + 0.5 * rng.standard_normal(n)
    interest = _interest(cfg, topics, fame, openness)
    ids = [f"p{i}" for i in range(n)]
    tag = [f"topic{int(np.argmax(t))}" for t in topics]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    history: list[Interaction] = []
    for step in range(cfg.encounters):
        for x in range(n):
            y = int(rng.integers(0, n - 1))
            y += y >= x
            if rng.random() < interest[x, y]:
                when = start + timedelta(hours=step * n + x)
                history.append(Interaction(ids[x], ids[y], when, tags=(tag[x], tag[y])))
    model = fit_directional(history)
    state = build_state(history)
    index = {pid: i for i, pid in enumerate(ids)}
    out: dict[str, Any] = {"history_interactions": len(history)}
    for mode in ("reciprocal", "one_sided"):
        mode_: Mode = "reciprocal" if mode == "reciprocal" else "one_sided"
        rec = PeopleRecommender(state, model, mode=mode_)
        rates, matches = [], []
        for a in ids:
            ia = index[a]
            picks = [index[m.person_id] for m in rec.recommend(a, cfg.k)]
            if not picks:
                continue
            requested = interest[ia, picks]
            accepted = requested * interest[picks, ia]
            rates.append(float(accepted.sum() / requested.sum()))
            matches.append(float(accepted.mean()))
        r, m = np.asarray(rates), np.asarray(matches)
        out[f"accept_rate_{mode}"] = round(float(r.mean()), 4)
        out[f"accept_rate_{mode}_ci95"] = [
            round(v, 4) for v in bootstrap_interval(r, seed=cfg.seed)
        ]
        out[f"connections_per_recommendation_{mode}"] = round(float(m.mean()), 4)
        out[f"connections_per_recommendation_{mode}_ci95"] = [
            round(v, 4) for v in bootstrap_interval(m, seed=cfg.seed)
        ]
    return out
