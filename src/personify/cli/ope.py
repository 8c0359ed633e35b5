"""``personify ope``: off-policy evaluation (IPS, SNIPS, DM, DR with intervals) of a policy from
logged bandit feedback, in the Open Bandit format or as Personify decision logs.

* ``--format open_bandit --log ROOT``: ROOT holds ``random/`` and ``bts/`` folders; the
  ``--behavior`` folder's log evaluates ``--policy`` (``bts``: its empirical item frequencies per
  position, ``random``: uniform). When the evaluated policy's own folder exists, its on-policy
  click rate is printed for comparison.
* ``--format personify``: decisions of one decision point (``--point``) from the database, with
  rewards attributed from stored events, or ``--log FILE.jsonl`` of decision logs each carrying
  ``rewards`` (action -> reward); evaluates the uniform-random policy over each decision's
  actions (the first slate position).

Decisions made ``seen_only`` (pages of rows) are read as live learning reads them: a decision
whose first row was never seen (no impression of it, no click on it) is left out of the
logged data rather than counted as an unclicked round, so the estimate is the one over the
rounds whose first row was seen. Stored decisions take *seen* from the rows' ``impression``
events (reported by the snippet or logged when served); a decision file lists it per decision
(``seen``: the actions seen, required when ``seen_only`` is true).
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from personify.cli.context import state_of
from personify.domain.errors import InvalidInput, NotFound
from personify.domain.tenants import validate_tenant_id
from personify.experiments.bandits import DecisionLog
from personify.experiments.ope import (
    ESTIMATORS,
    ActionMeanReward,
    BanditLog,
    Estimate,
    LogisticReward,
    RewardModel,
    evaluate_policy,
)
from personify.experiments.open_bandit import (
    CAMPAIGNS,
    POLICIES,
    frequency_action_dist,
    load_open_bandit,
    logged_action_dist,
    uniform_action_dist,
)
from personify.runtime.pages import REWARD_TYPES, row_hit, row_seen
from personify.storage.sql.experiments import SqlDecisionLogStore

console = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``ope`` as a top-level command."""
    app.command("ope")(ope)


def _model(name: str) -> type[RewardModel]:
    return LogisticReward if name == "logistic" else ActionMeanReward


def ope(
    ctx: typer.Context,
    log: Annotated[
        Path | None,
        typer.Option("--log", help="Open Bandit root, or a JSONL file of decision logs."),
    ] = None,
    fmt: Annotated[
        Literal["open_bandit", "personify"], typer.Option("--format", help="Log format.")
    ] = "open_bandit",
    campaign: Annotated[str, typer.Option(help="Open Bandit campaign: all, men or women.")] = "all",
    behavior: Annotated[str, typer.Option(help="Logging policy folder: random or bts.")] = "random",
    policy: Annotated[
        str | None,
        typer.Option(help="Policy to evaluate: bts (default) or random for open_bandit; "
                     "uniform (default) for personify logs."),
    ] = None,
    point: Annotated[
        str | None, typer.Option(help="Decision point whose stored decisions to evaluate.")
    ] = None,
    estimator: Annotated[
        list[str] | None, typer.Option("--estimator", "-e", help="ips, snips, dm, dr (repeat).")
    ] = None,
    reward_model: Annotated[
        Literal["mean", "logistic"], typer.Option(help="Reward model of DM and DR.")
    ] = "mean",
    dm_bootstrap: Annotated[
        int, typer.Option(help="Refits widening the DM interval (0: off).", min=0)
    ] = 200,
    alpha: Annotated[float, typer.Option(help="1 - confidence level.", min=0.001, max=0.5)] = 0.05,
    tenant: Annotated[str | None, typer.Option(help="Tenant (with --point).")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the rows as JSON.")] = None,
) -> None:
    """Estimate a policy's value from logged data with IPS, SNIPS, DM and DR.

    \b
    Flags per --format:
      open_bandit (default): --log ROOT (the folder holding random/ and bts/), optional
        --campaign all|men|women, --behavior random|bts (the logging policy),
        --policy bts|random (the policy evaluated).
      personify: --point NAME (decisions stored in the database; --tenant) or
        --log FILE.jsonl (decision logs with their rewards); --policy uniform.
    Both: --estimator, --reward-model, --dm-bootstrap, --alpha, --out.
    """
    _check_flags(fmt, log=log, campaign=campaign, behavior=behavior, point=point,
                 tenant=tenant)
    estimators = tuple(estimator or ESTIMATORS)
    on_policy: float | None = None
    if fmt == "open_bandit":
        assert log is not None  # _check_flags
        bandit_log, dist, on_policy, title = _open_bandit(log, campaign, behavior, policy or "bts")
    else:
        if policy not in (None, "uniform"):
            raise InvalidInput(f"unknown policy {policy!r} for personify logs", field="policy",
                               accepted="uniform")
        decisions, rewards, seen, source = _personify_logs(ctx, log, point, tenant)
        kept = seen_decisions(decisions, rewards, seen)
        if not kept:
            raise NotFound(f"none of the {len(decisions)} decisions {source} had its first "
                           "action seen", field="point" if log is None else "log")
        unseen = len(decisions) - len(kept)
        title = f"uniform policy from {len(kept)} decisions {source}" + (
            f" ({unseen} never seen left out)" if unseen else "")
        bandit_log, dist = decisions_to_bandit_log(kept, rewards)
    estimates = evaluate_policy(
        bandit_log,
        dist,
        make_model=_model(reward_model),
        estimators=estimators,
        alpha=alpha,
        dm_bootstrap=dm_bootstrap,
    )
    console.print(estimates_table(estimates, title, on_policy, alpha))
    if out is not None:
        rows = [
            {**vars(e), "on_policy": on_policy, "title": title} for e in estimates
        ]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=2), encoding="utf-8")
        console.print(f"wrote {out}")


FORMAT_FLAGS = {
    "open_bandit": "--log ROOT [--campaign] [--behavior] [--policy bts|random]",
    "personify": "--point NAME [--tenant] or --log FILE.jsonl [--policy uniform]",
}


def _check_flags(
    fmt: str, *, log: Path | None, campaign: str, behavior: str, point: str | None,
    tenant: str | None,
) -> None:
    """Refuse a flag that the chosen format does not read, naming what it needs instead."""
    if fmt == "open_bandit":
        wrong = [f for f, v in (("--point", point), ("--tenant", tenant)) if v is not None]
    else:
        wrong = [f for f, v, d in (("--campaign", campaign, "all"),
                                   ("--behavior", behavior, "random")) if v != d]
    if wrong:
        raise InvalidInput(
            f"{', '.join(wrong)} does not apply to --format {fmt}", field="format",
            accepted=f"--format {fmt}: {FORMAT_FLAGS[fmt]}",
        )
    if fmt == "open_bandit" and log is None:
        raise InvalidInput("--format open_bandit needs --log", field="log",
                           accepted=FORMAT_FLAGS["open_bandit"])


def _open_bandit(
    root: Path, campaign: str, behavior: str, policy: str
) -> tuple[BanditLog, np.ndarray, float | None, str]:
    if campaign not in CAMPAIGNS:
        raise InvalidInput(f"unknown campaign {campaign!r}", field="campaign",
                           accepted=", ".join(CAMPAIGNS))
    for name, value in (("behavior", behavior), ("policy", policy)):
        if value not in POLICIES:
            raise InvalidInput(f"unknown {name} {value!r}", field=name,
                               accepted=", ".join(POLICIES))
    logged = load_open_bandit(root, behavior, campaign)
    target = None
    with contextlib.suppress(NotFound):  # the evaluated policy's own log is optional
        target = load_open_bandit(root, policy, campaign)
    positions = (
        logged.log.position
        if logged.log.position is not None
        else np.zeros(logged.log.n_rounds, dtype=int)
    )
    if policy == "random":
        dist = uniform_action_dist(logged.log.n_rounds, logged.log.n_actions)
    elif target is None:
        raise NotFound(f"no {policy} log to rebuild its action distribution from", field="log")
    elif policy == behavior:
        dist, _ = logged_action_dist(target, logged.times, positions)
    else:
        dist = frequency_action_dist(target, positions)
    on_policy = target.click_rate if target is not None else None
    title = f"{policy} policy on campaign {campaign}, from {logged.log.n_rounds} {behavior} rounds"
    return logged.log, dist, on_policy, title


def _personify_logs(
    ctx: typer.Context, log: Path | None, point: str | None, tenant: str | None
) -> tuple[list[DecisionLog], dict[str, dict[str, float]], dict[str, set[str]], str]:
    """The decisions, their rewards, their actions seen and where they come from."""
    if log is not None:
        decisions, rewards, seen = read_decision_file(log)
        return decisions, rewards, seen, f"in {log.name}"
    if point is None:
        raise InvalidInput("--format personify needs --point NAME or --log FILE.jsonl",
                           field="point", accepted=FORMAT_FLAGS["personify"])
    state = state_of(ctx)
    settings = state.settings()
    stores = state.stores(settings)
    assert stores.database is not None
    tenant_id = validate_tenant_id(tenant or settings.default_tenant)
    store = SqlDecisionLogStore(stores.database, DecisionLog.from_dict)
    decisions = list(store.scan(tenant_id, policy=point))
    if not decisions:
        raise NotFound(f"no decisions logged at point {point!r}", field="point")
    since = min(d.timestamp for d in decisions)
    ids = {d.decision_id for d in decisions}
    hits: list[tuple[str | None, str | None, str]] = []
    seen_rows: dict[str, set[str]] = defaultdict(set)
    for e in stores.events.scan(tenant_id, since=since):
        if e.recommendation_id in ids:
            hits.append((e.recommendation_id, e.item_id, e.type))
        elif (shown := row_seen(e)) is not None and shown[0] in ids:
            seen_rows[shown[0]].add(shown[1])  # an impression of a page's row: the row was seen
        elif (row := row_hit(e)) is not None and row[0] in ids:
            # a click on an item of a page's row rewards the row (page decisions)
            hits.append((row[0], row[1], e.type))
            if e.type in REWARD_TYPES:  # as live learning: a row acted on was seen
                seen_rows[row[0]].add(row[1])
    rewards = rewards_by_decision(hits)
    return decisions, rewards, dict(seen_rows), f"at {point}"


def rewards_by_decision(
    hits: Iterable[tuple[str | None, str | None, str]],
    reward_types: Mapping[str, float] | None = None,
) -> dict[str, dict[str, float]]:
    """decision id -> action -> the largest reward among its events (default: click = 1)."""
    weights = dict(reward_types or {"click": 1.0})
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for decision_id, item_id, kind in hits:
        if decision_id is None or item_id is None or kind not in weights:
            continue
        out[decision_id][item_id] = max(out[decision_id].get(item_id, 0.0), weights[kind])
    return dict(out)


def read_decision_file(
    path: Path,
) -> tuple[list[DecisionLog], dict[str, dict[str, float]], dict[str, set[str]]]:
    """Decision logs (``DecisionLog.to_dict`` plus ``rewards``: action -> reward, and for a
    ``seen_only`` decision ``seen``: the actions seen), one a line."""
    if not path.is_file():
        raise NotFound(f"no file {path}", field="log", accepted="a JSONL file of decisions")
    decisions: list[DecisionLog] = []
    rewards: dict[str, dict[str, float]] = {}
    seen: dict[str, set[str]] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                body: dict[str, Any] = json.loads(line)
                got = {str(k): float(v) for k, v in (body.pop("rewards", None) or {}).items()}
                shown = body.pop("seen", None)
                decision = DecisionLog.from_dict(body)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise InvalidInput(f"line {n} of {path.name} is not a decision log: {exc}",
                                   field="log") from None
            if decision.seen_only and not (
                isinstance(shown, list) and all(isinstance(a, str) for a in shown)
            ):
                raise InvalidInput(
                    f"line {n} of {path.name}: a seen_only decision needs 'seen'", field="seen",
                    accepted="a list of the decision's actions that were seen (may be empty)")
            decisions.append(decision)
            rewards[decision.decision_id] = got
            if decision.seen_only:
                seen[decision.decision_id] = set(shown or [])
    if not decisions:
        raise InvalidInput(f"{path.name} holds no decisions", field="log")
    return decisions, rewards, seen


def seen_decisions(
    decisions: Iterable[DecisionLog],
    rewards: Mapping[str, Mapping[str, float]],
    seen: Mapping[str, set[str]],
) -> list[DecisionLog]:
    """The decisions whose evaluated round (the first slate position) was seen: every decision
    not made ``seen_only``, and a ``seen_only`` one (a page of rows) when its first action is
    among ``seen`` or earned a reward. The others are left out, as live learning leaves them
    (neither reward nor penalty): an unseen row is not an unclicked one."""
    return [
        d for d in decisions
        if not d.seen_only
        or d.chosen[0] in seen.get(d.decision_id, set())
        or rewards.get(d.decision_id, {}).get(d.chosen[0], 0.0) > 0
    ]


def decisions_to_bandit_log(
    decisions: list[DecisionLog], rewards: Mapping[str, Mapping[str, float]]
) -> tuple[BanditLog, np.ndarray]:
    """The first slate position of each decision as a round, and the uniform-random policy over
    that decision's actions as the evaluation distribution."""
    vocab: dict[str, int] = {}
    for d in decisions:
        for a in d.actions:
            vocab.setdefault(a, len(vocab))
    dims = {len(d.context) for d in decisions}
    n = len(decisions)
    dist = np.zeros((n, len(vocab)))
    for i, d in enumerate(decisions):
        dist[i, [vocab[a] for a in d.actions]] = 1.0 / len(d.actions)
    log = BanditLog(
        action=np.array([vocab[d.chosen[0]] for d in decisions], dtype=int),
        reward=np.array([rewards.get(d.decision_id, {}).get(d.chosen[0], 0.0) for d in decisions]),
        pscore=np.array([d.propensities[0] for d in decisions]),
        n_actions=len(vocab),
        context=np.array([d.context for d in decisions]) if len(dims) == 1 else None,
    )
    return log, dist


def estimates_table(
    estimates: list[Estimate], title: str, on_policy: float | None, alpha: float
) -> Table:
    level = f"{1 - alpha:.0%}"
    table = Table("estimator", "estimate", f"{level} CI low", f"{level} CI high", "se", "rounds",
                  "covers on-policy", title=title + (
                      f"; on-policy value {on_policy:.5f}" if on_policy is not None else ""))
    for e in estimates:
        covers = "-" if on_policy is None else (
            "yes" if e.ci_low <= on_policy <= e.ci_high else "[red]no[/]")
        table.add_row(e.estimator, f"{e.value:.5f}", f"{e.ci_low:.5f}", f"{e.ci_high:.5f}",
                      f"{e.se:.5f}", str(e.n_rounds), covers)
    return table
