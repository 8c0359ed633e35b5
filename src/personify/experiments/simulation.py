"""A closed-loop simulator: a population with true preferences fitted on real purchases, which
sees what a policy serves and clicks and buys accordingly.

Fitting: the Online Retail purchase matrix (customers x the most bought items, log counts) is
factorized by truncated SVD; the affinity ``u . v`` is standardized to ``z`` and mapped to
``P(click) = sigmoid(logit(base_ctr) + click_slope * z)`` (times a position discount) and
``P(buy | click) = sigmoid(logit(base_buy) + buy_slope * z)``; revenue of a buy is the item's
median unit price. Policies: a popularity control and a personalized policy ranking by noisy
user factors. Experiments run through the real assignment and analysis code.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as st
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import svds

from personify.domain.errors import InvalidInput
from personify.experiments.analysis import MetricSamples, analyze
from personify.experiments.assignment import assign
from personify.experiments.bandits import BanditPolicy, LinearThompson, LinUCB
from personify.experiments.definitions import (
    N_BUCKETS,
    Experiment,
    ExperimentStatus,
    Metric,
    MetricKind,
    Variant,
)
from personify.experiments.stats import (
    Comparison,
    required_units_for_difference,
    wilson_interval,
)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


def read_retail_purchases(
    path: str | Path, *, n_items: int = 300, min_items_per_user: int = 3
) -> tuple[csr_matrix, np.ndarray, np.ndarray]:
    """Online Retail CSV (gz) -> (user x item log-count matrix, item popularity, item price).

    Drops cancellations, non-positive quantities and rows without a customer; keeps the
    ``n_items`` items bought by most customers and customers with enough of them.
    """
    counts: dict[tuple[str, str], float] = defaultdict(float)
    prices: dict[str, list[float]] = defaultdict(list)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["InvoiceNo"].startswith("C") or not row["CustomerID"]:
                continue
            qty = float(row["Quantity"])
            if qty <= 0:
                continue
            counts[(row["CustomerID"], row["StockCode"])] += 1.0
            prices[row["StockCode"]].append(float(row["UnitPrice"]))
    buyers: dict[str, int] = defaultdict(int)
    for _, item in counts:
        buyers[item] += 1
    items = sorted(buyers, key=lambda i: (-buyers[i], i))[:n_items]
    item_index = {it: j for j, it in enumerate(items)}
    per_user: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for (user, item), c in counts.items():
        if item in item_index:
            per_user[user].append((item_index[item], c))
    users = sorted(u for u, lst in per_user.items() if len(lst) >= min_items_per_user)
    rows, cols, vals = [], [], []
    for i, u in enumerate(users):
        for j, c in per_user[u]:
            rows.append(i)
            cols.append(j)
            vals.append(math.log1p(c))
    matrix = csr_matrix((vals, (rows, cols)), shape=(len(users), len(items)))
    popularity = np.array([buyers[it] for it in items], dtype=float)
    price = np.array([float(np.median(prices[it])) for it in items])
    return matrix, popularity, price


@dataclass
class World:
    """True preferences of a population: factors, popularity, prices and response curves."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    popularity: np.ndarray
    prices: np.ndarray
    base_ctr: float = 0.03
    click_slope: float = 0.8
    base_buy: float = 0.1
    buy_slope: float = 0.4
    position_discount: float = 0.85
    z_mean: float = 0.0
    z_std: float = 1.0

    @property
    def n_users(self) -> int:
        return len(self.user_factors)

    @property
    def n_items(self) -> int:
        return len(self.item_factors)

    def affinity(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Standardized affinity z for users (n,) and items (n, k) -> (n, k)."""
        raw = np.einsum("nr,nkr->nk", self.user_factors[users], self.item_factors[items])
        out: np.ndarray = (raw - self.z_mean) / self.z_std
        return out

    def click_prob(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        z = self.affinity(users, items)
        decay = self.position_discount ** np.arange(items.shape[1])
        return _sigmoid(_logit(self.base_ctr) + self.click_slope * z) * decay

    def buy_prob(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return _sigmoid(_logit(self.base_buy) + self.buy_slope * self.affinity(users, items))


def fit_world(
    matrix: csr_matrix, popularity: np.ndarray, prices: np.ndarray, *, rank: int = 16, **kw: Any
) -> World:
    """Truncated SVD of the purchase matrix; factors scaled by sqrt of the singular values."""
    u, s, vt = svds(matrix.astype(float), k=rank)
    root = np.sqrt(s)
    world = World(u * root, vt.T * root, popularity, prices, **kw)
    raw = world.user_factors @ world.item_factors.T
    world.z_mean, world.z_std = float(raw.mean()), float(raw.std()) or 1.0
    return world


def synthetic_world(n_users: int = 2000, n_items: int = 100, rank: int = 8, seed: int = 0) -> World:
    """A small random world for tests: Gaussian factors, Zipf-like popularity."""
    rng = np.random.default_rng(seed)
    users = rng.standard_normal((n_users, rank)) / math.sqrt(rank)
    items = rng.standard_normal((n_items, rank))
    popularity = (items @ users.mean(axis=0)) + rng.gumbel(size=n_items)
    world = World(users, items, popularity, rng.lognormal(1.0, 0.5, n_items))
    raw = users @ items.T
    world.z_mean, world.z_std = float(raw.mean()), float(raw.std())
    return world


Policy = Callable[[World, np.ndarray, int, np.random.Generator], np.ndarray]
"""(world, user indices, k, rng) -> item slates (n_users, k)."""


def popularity_policy(
    world: World, users: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """The same top-k most bought items for everybody."""
    top = np.argsort(-world.popularity, kind="stable")[:k]
    return np.tile(top, (len(users), 1))


def personalized_policy(noise: float = 0.5) -> Policy:
    """Top-k by the user's factors plus Gaussian noise (an imperfect learned model)."""

    def policy(world: World, users: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        u = world.user_factors[users]
        u = u + noise * u.std() * rng.standard_normal(u.shape)
        scores = u @ world.item_factors.T
        return np.argsort(-scores, axis=1)[:, :k]

    return policy


@dataclass
class Outcomes:
    """Per-user totals of one simulated period."""

    impressions: np.ndarray
    clicks: np.ndarray
    converted: np.ndarray
    revenue: np.ndarray


def run_period(
    world: World,
    users: np.ndarray,
    slates: np.ndarray,
    rng: np.random.Generator,
    *,
    visits_mean: float = 3.0,
    click_multiplier: float = 1.0,
) -> Outcomes:
    """Each user visits Poisson(visits_mean)+1 times and sees the same slate each visit."""
    visits = rng.poisson(visits_mean, size=len(users)) + 1
    p_click = np.clip(world.click_prob(users, slates) * click_multiplier, 0, 1)
    clicks = rng.binomial(visits[:, None], p_click)
    buys = rng.binomial(clicks, world.buy_prob(users, slates))
    revenue = (buys * world.prices[slates]).sum(axis=1)
    return Outcomes(
        (visits * slates.shape[1]).astype(float),
        clicks.sum(axis=1).astype(float),
        (buys.sum(axis=1) > 0).astype(float),
        revenue,
    )


def _two_arm_experiment(name: str) -> Experiment:
    return Experiment(
        name=name,
        variants=[Variant(name="A"), Variant(name="B")],
        primary_metric=Metric(name="ctr", kind=MetricKind.RATIO),
        guardrail_metrics=[
            Metric(name="conversion", kind=MetricKind.PROPORTION),
            Metric(name="revenue", kind=MetricKind.MEAN),
        ],
        status=ExperimentStatus.RUNNING,
        bucket_range=(0, N_BUCKETS),
        planned_sample_size=2,
    )


def ab_test(
    world: World,
    control: Policy,
    treatment: Policy,
    n_units: int,
    rng: np.random.Generator,
    *,
    run: str = "0",
    k: int = 5,
    click_multiplier: float = 1.0,
    n_bootstrap: int = 0,
) -> dict[str, Comparison]:
    """Assign ``n_units`` visitors with the real hashing, serve, simulate, analyze.
    ``click_multiplier`` plants a relative CTR lift in the treatment."""
    exp = _two_arm_experiment(f"sim-{run}")
    users = rng.integers(0, world.n_users, size=n_units)
    arm = np.array([assign(exp, f"user:{run}:{i}").variant == "B" for i in range(n_units)])  # type: ignore[union-attr]
    data: dict[str, dict[str, MetricSamples]] = {}
    for name, policy, mult, mask in (
        ("A", control, 1.0, ~arm),
        ("B", treatment, click_multiplier, arm),
    ):
        u = users[mask]
        out = run_period(world, u, policy(world, u, k, rng), rng, click_multiplier=mult)
        data[name] = {
            "ctr": MetricSamples(out.clicks, out.impressions),
            "conversion": MetricSamples(out.converted),
            "revenue": MetricSamples(out.revenue),
        }
    result = analyze(exp, data, n_bootstrap=n_bootstrap)
    return {c.metric: c for c in result.comparisons}


def bandit_regret(
    world: World,
    make_policy: Callable[[int], BanditPolicy] | None,
    *,
    n_arms: int = 10,
    rounds: int = 3000,
    seed: int = 0,
) -> float:
    """Expected cumulative regret of a contextual bandit choosing 1 of ``n_arms`` offers (the
    most popular items) with the user's factors as context; None policy = uniform random."""
    rng = np.random.default_rng(seed)
    arms = np.argsort(-world.popularity, kind="stable")[:n_arms]
    names = [str(a) for a in arms]
    dim = world.user_factors.shape[1] + 1
    policy = make_policy(dim) if make_policy is not None else None
    scale = float(world.user_factors.std()) or 1.0
    regret = 0.0
    for _ in range(rounds):
        u = int(rng.integers(0, world.n_users))
        probs = world.click_prob(np.array([u]), arms[None, :])[0]
        x = np.concatenate([[1.0], world.user_factors[u] / scale])
        if policy is None:
            j = int(rng.integers(0, n_arms))
        else:
            j = names.index(policy.choose(x, names, 1, n_draws=50).ranked[0])
            policy.update(names[j], x, float(rng.random() < probs[j]))
        regret += float(probs.max() - probs[j])
    return regret


def _unit_variance(ci: tuple[float, float], n: int, alpha: float) -> float:
    """Per-unit variance behind a symmetric normal interval of a mean or ratio over ``n`` units."""
    se = (ci[1] - ci[0]) / (2 * st.norm.ppf(1 - alpha / 2))
    return float(se * se * n)


def realized_lift(world: World, policy: Policy, click_multiplier: float, k: int = 5) -> float:
    """The relative CTR lift a click multiplier really plants once probabilities are capped at 1
    (expected over the whole population, no sampling noise)."""
    users = np.arange(world.n_users)
    p = world.click_prob(users, policy(world, users, k, np.random.default_rng(0)))
    return float(np.clip(p * click_multiplier, 0, 1).sum() / p.sum() - 1)


def aa_study(
    world: World, *, runs: int, units: int, seeds: list[int], alpha: float = 0.05
) -> dict[str, Any]:
    """A/A false-positive rate of the CTR test over ``runs`` experiments per seed (each with its
    own experiment name, so its own hashing): per-seed and pooled rates with Wilson intervals.
    A bias shows as a pooled interval that excludes ``alpha``; noise as per-seed rates whose
    intervals overlap it."""
    per_seed: dict[str, Any] = {}
    total = 0
    for seed in seeds:
        rng = np.random.default_rng(seed)
        hits = 0
        for r in range(runs):
            res = ab_test(world, popularity_policy, popularity_policy, units, rng,
                          run=f"aa{seed}-{r}")
            hits += bool(res["ctr"].p_value < alpha)
        low, high = wilson_interval(hits, runs)
        per_seed[str(seed)] = {"rate": hits / runs, "wilson_low": low, "wilson_high": high}
        total += hits
    n = runs * len(seeds)
    low, high = wilson_interval(total, n)
    return {
        "aa_study_rate": total / n,
        "aa_study_wilson_low": low,
        "aa_study_wilson_high": high,
        "aa_study_runs": n,
        "aa_study_alpha_inside": low <= alpha <= high,
        "aa_study_per_seed": per_seed,
    }


@dataclass
class SimulationConfig:
    """What :func:`simulate` runs; small defaults keep it to about a minute."""

    dataset: str | Path | None = None
    n_items: int = 300
    rank: int = 16
    seed: int = 0
    aa_runs: int = 200
    aa_units: int = 2000
    power_runs: int = 200
    planted_lift: float = 0.10
    power: float = 0.8
    pilot_units: int = 40000
    """Units of the planted-lift pilot that measures the treatment arm's CTR variance."""
    compare_units: int = 20000
    bandit_rounds: int = 3000
    bandit_arms: int = 10
    extra: dict[str, Any] = field(default_factory=dict)


def simulate(
    config: SimulationConfig | None = None, *, world: World | None = None
) -> dict[str, Any]:
    """Run the A/A, planted-lift, personalized-vs-popularity and bandit studies; return metrics."""
    cfg = config or SimulationConfig()
    if world is None:
        if cfg.dataset is None:
            raise InvalidInput(
                "a dataset path or a world is needed",
                field="dataset",
                accepted="path to online_retail.csv.gz",
            )
        m, pop, price = read_retail_purchases(cfg.dataset, n_items=cfg.n_items)
        world = fit_world(m, pop, price, rank=cfg.rank)
    rng = np.random.default_rng(cfg.seed)
    alpha = 0.05
    aa_hits = 0
    aa_variances = []
    for r in range(cfg.aa_runs):
        res = ab_test(world, popularity_policy, popularity_policy, cfg.aa_units, rng, run=f"aa{r}")
        aa_hits += res["ctr"].p_value < alpha
        c = res["ctr"]
        se = (c.diff_ci[1] - c.diff_ci[0]) / (2 * st.norm.ppf(1 - alpha / 2))
        aa_variances.append(se * se * (c.n_control * c.n_variant) / (c.n_control + c.n_variant))
    # Units per arm for the planted lift at the stated power. The test is two-sided with an
    # unpooled standard error sqrt(var_A / n + var_B / n), so the size needs the variance of
    # *each* arm under the alternative: the control's from the A/A runs, the treatment's from a
    # pilot with the lift planted (a higher CTR has a larger per-unit variance; sizing with
    # twice the control's variance under-powered the test: 0.77 measured at a stated 0.80).
    pilot = ab_test(
        world,
        popularity_policy,
        popularity_policy,
        cfg.pilot_units,
        rng,
        run="pilot",
        click_multiplier=1 + cfg.planted_lift,
    )
    base = pilot["ctr"].control_value
    var_control = float(np.mean(aa_variances))  # per-unit variance of the CTR ratio
    var_treatment = _unit_variance(pilot["ctr"].variant_ci, pilot["ctr"].n_variant, alpha)
    realized = realized_lift(world, popularity_policy, 1 + cfg.planted_lift)
    n_arm = required_units_for_difference(
        var_control, var_treatment, base * realized, alpha=alpha, power=cfg.power
    )
    hits = 0
    for r in range(cfg.power_runs):
        res = ab_test(
            world,
            popularity_policy,
            popularity_policy,
            2 * n_arm,
            rng,
            run=f"pw{r}",
            click_multiplier=1 + cfg.planted_lift,
        )
        hits += res["ctr"].p_value < alpha and res["ctr"].diff > 0
    cmp = ab_test(
        world,
        popularity_policy,
        personalized_policy(),
        cfg.compare_units,
        rng,
        run="compare",
        n_bootstrap=500,
    )
    uniform = bandit_regret(
        world, None, n_arms=cfg.bandit_arms, rounds=cfg.bandit_rounds, seed=cfg.seed
    )
    linucb = bandit_regret(
        world,
        lambda d: LinUCB(d, alpha=0.5, seed=cfg.seed),
        n_arms=cfg.bandit_arms,
        rounds=cfg.bandit_rounds,
        seed=cfg.seed,
    )
    lints = bandit_regret(
        world,
        lambda d: LinearThompson(d, v=0.2, seed=cfg.seed),
        n_arms=cfg.bandit_arms,
        rounds=cfg.bandit_rounds,
        seed=cfg.seed,
    )
    return {
        "aa_false_positive_rate": aa_hits / cfg.aa_runs,
        "aa_false_positive_wilson": list(wilson_interval(aa_hits, cfg.aa_runs)),
        "aa_runs": cfg.aa_runs,
        "planted_lift": cfg.planted_lift,
        "planted_lift_realized": realized,
        "planted_lift_units_per_arm": n_arm,
        "planted_lift_variance_ratio": var_treatment / var_control,
        "planted_lift_stated_power": cfg.power,
        "planted_lift_power": hits / cfg.power_runs,
        "ctr_control": cmp["ctr"].control_value,
        "ctr_personalized": cmp["ctr"].variant_value,
        "ctr_lift": cmp["ctr"].lift,
        "ctr_lift_ci_low": cmp["ctr"].lift_ci[0],
        "ctr_lift_ci_high": cmp["ctr"].lift_ci[1],
        "conversion_lift": cmp["conversion"].lift,
        "conversion_lift_ci_low": cmp["conversion"].lift_ci[0],
        "conversion_lift_ci_high": cmp["conversion"].lift_ci[1],
        "revenue_per_user_lift": cmp["revenue"].lift,
        "bandit_regret_uniform": uniform,
        "bandit_regret_linucb": linucb,
        "bandit_regret_linear_thompson": lints,
        "bandit_regret_ratio": min(linucb, lints) / uniform if uniform else math.nan,
        "bandit_regret_ratio_linucb": linucb / uniform if uniform else math.nan,
        "n_users": world.n_users,
        "n_items": world.n_items,
    }
