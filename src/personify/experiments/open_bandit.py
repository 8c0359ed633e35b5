"""Reader for logs in the Open Bandit Dataset format, and the logging policy's action distribution.

Files: ``<root>/<policy>/<campaign>/<campaign>.csv`` with columns ``timestamp, item_id, position,
click, propensity_score, user_feature_0..3, user-item_affinity_<item>``. Each row is one round
(one slot). Positions are stored 1-based and returned 0-based. The context is the one-hot of the
four hashed user features (vocabulary from the file itself).

The dataset gives the logging policy's propensity of the *logged* item only. To evaluate the
Bernoulli Thompson Sampling policy from the random logs we need its full distribution per round;
:func:`logged_action_dist` rebuilds it from the BTS log itself: for each (item, position), the
propensity logged by BTS nearest in time to the round (0 when none within ``max_gap``), then
normalized per round. BTS ignores the user context, so this is its distribution at that time.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from personify.domain.errors import InvalidInput, NotFound
from personify.experiments.ope import BanditLog

POLICIES = ("random", "bts")
CAMPAIGNS = ("all", "men", "women")
N_POSITIONS = 3


@dataclass(frozen=True)
class OpenBanditData:
    """One policy's log of one campaign; ``times`` are POSIX seconds."""

    policy: str
    campaign: str
    log: BanditLog
    times: np.ndarray

    @property
    def click_rate(self) -> float:
        return float(self.log.reward.mean())


def load_open_bandit(root: str | Path, policy: str, campaign: str) -> OpenBanditData:
    """Load ``<root>/<policy>/<campaign>/<campaign>.csv``."""
    if policy not in POLICIES:
        raise InvalidInput(
            f"unknown policy {policy!r}", field="policy", accepted=", ".join(POLICIES)
        )
    if campaign not in CAMPAIGNS:
        raise InvalidInput(
            f"unknown campaign {campaign!r}", field="campaign", accepted=", ".join(CAMPAIGNS)
        )
    path = Path(root) / policy / campaign / f"{campaign}.csv"
    if not path.exists():
        raise NotFound(f"no Open Bandit log at {path}", field="path")
    items_path = path.parent / "item_context.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if items_path.exists():
        with items_path.open(newline="", encoding="utf-8") as fh:
            n_actions = sum(1 for _ in csv.DictReader(fh))
    else:
        n_actions = 1 + max(int(r["item_id"]) for r in rows)
    feature_cols = [c for c in rows[0] if c.startswith("user_feature_")] if rows else []
    vocab: dict[tuple[str, str], int] = {}
    for r in rows:
        for c in feature_cols:
            vocab.setdefault((c, r[c]), len(vocab))
    context = np.zeros((len(rows), len(vocab)))
    for i, r in enumerate(rows):
        for c in feature_cols:
            context[i, vocab[(c, r[c])]] = 1.0
    log = BanditLog(
        action=np.array([int(r["item_id"]) for r in rows], dtype=int),
        reward=np.array([float(r["click"]) for r in rows]),
        pscore=np.array([float(r["propensity_score"]) for r in rows]),
        n_actions=n_actions,
        context=context,
        position=np.array([int(r["position"]) - 1 for r in rows], dtype=int),
        n_positions=N_POSITIONS,
    )
    times = np.array([datetime.fromisoformat(r["timestamp"]).timestamp() for r in rows])
    return OpenBanditData(policy, campaign, log, times)


def uniform_action_dist(n_rounds: int, n_actions: int) -> np.ndarray:
    """The uniform-random policy: 1 / n_actions for every item at every position."""
    return np.full((n_rounds, n_actions), 1.0 / n_actions)


def logged_action_dist(
    source: OpenBanditData,
    times: np.ndarray,
    positions: np.ndarray,
    *,
    max_gap: float = 24 * 3600.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The source policy's distribution over items at each (time, position), rebuilt from its own
    logged propensities (see the module docstring). Returns (dist, raw row sums before
    normalization; near 1 when the reconstruction is faithful)."""
    n_actions = source.log.n_actions
    pos_src = (
        source.log.position
        if source.log.position is not None
        else np.zeros(source.log.n_rounds, dtype=int)
    )
    raw = np.zeros((len(times), n_actions))
    for p in range(source.log.n_positions):
        query = np.flatnonzero(positions == p)
        if len(query) == 0:
            continue
        t_q = times[query]
        for a in range(n_actions):
            rows = np.flatnonzero((pos_src == p) & (source.log.action == a))
            if len(rows) == 0:
                continue
            order = rows[np.argsort(source.times[rows])]
            t_s = source.times[order]
            idx = np.searchsorted(t_s, t_q)
            left = np.clip(idx - 1, 0, len(t_s) - 1)
            right = np.clip(idx, 0, len(t_s) - 1)
            nearest = np.where(np.abs(t_s[left] - t_q) <= np.abs(t_s[right] - t_q), left, right)
            gap = np.abs(t_s[nearest] - t_q)
            raw[query, a] = np.where(gap <= max_gap, source.log.pscore[order][nearest], 0.0)
    sums = raw.sum(axis=1)
    dist = np.where(
        sums[:, None] > 0, raw / np.where(sums > 0, sums, 1.0)[:, None], 1.0 / n_actions
    )
    return dist, sums


def frequency_action_dist(
    source: OpenBanditData, positions: np.ndarray, *, smoothing: float = 0.5
) -> np.ndarray:
    """Alternative: the source policy's empirical item frequencies per position over the week."""
    n_actions = source.log.n_actions
    pos_src = (
        source.log.position
        if source.log.position is not None
        else np.zeros(source.log.n_rounds, dtype=int)
    )
    table = np.zeros((source.log.n_positions, n_actions))
    for p in range(source.log.n_positions):
        counts = np.bincount(source.log.action[pos_src == p], minlength=n_actions) + smoothing
        table[p] = counts / counts.sum()
    out: np.ndarray = table[positions]
    return out
