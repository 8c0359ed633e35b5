"""``personify train`` and ``personify models list | promote | rollback``: the model lifecycle.

Training runs here (or in the child process the embedded scheduler starts), never inside a
request; servers pick up the promoted version and swap it in.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from personify.algorithms import available_models
from personify.cli.context import state_of
from personify.data.events import EventWeights
from personify.domain.errors import InvalidInput
from personify.domain.tenants import validate_tenant_id
from personify.jobs.selection import Selection, SelectionPlan
from personify.jobs.training import (
    DEFAULT_MODEL,
    DEFAULT_PARAMS,
    DEFAULT_USER_MODEL,
    DEFAULT_USER_PARAMS,
    TrainingConfig,
    explain_exclusions,
    train_tenant,
)
from personify.privacy.model_versions import ErasureAwareModelStore
from personify.privacy.runtime import open_runtime
from personify.storage.sql.event_types import SqlEventTypes

app = typer.Typer(help="List, promote and roll back trained model versions.", no_args_is_help=True)
console = Console(soft_wrap=True)


def _tenant(ctx: typer.Context, tenant: str | None) -> str:
    return validate_tenant_id(tenant or state_of(ctx).settings().default_tenant)


def _store(ctx: typer.Context) -> ErasureAwareModelStore:
    """The model directory; promotions and rollbacks apply the erasures recorded after a
    version was trained (or refuse it), like the server's."""
    state = state_of(ctx)
    settings = state.settings()
    runtime = open_runtime(state.stores(settings), **settings.privacy_options())
    return runtime.model_store(settings.model_dir)


def _served(requested: str, served: str) -> str:
    if served == requested:
        return served
    return (f"{served} ({requested} without the people erased after its training data was "
            "read)")


def train(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: the default one).")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Collaborative model for the neighbour matrix (fixes the "
                     "configuration: no selection)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Model hyper-parameter NAME=VALUE (JSON value)."),
    ] = None,
    no_blend: Annotated[
        bool, typer.Option("--no-blend", help="Keep the default blend weights.")
    ] = False,
    no_ranker: Annotated[
        bool, typer.Option("--no-ranker", help="Do not train the LambdaRank ranker.")
    ] = False,
    no_promote: Annotated[
        bool, typer.Option("--no-promote", help="Save the version without promoting it.")
    ] = False,
    factors: Annotated[
        int | None,
        typer.Option(help="ALS latent factors for the 'factors' source, 0 = none (default: 64 "
                     "when the implicit library is installed)."),
    ] = None,
    user_model: Annotated[
        str | None,
        typer.Option(help="Model whose batch scores become each person's list ('none': no "
                     "lists, the neighbours serve everyone); fixes the configuration: no "
                     "selection."),
    ] = None,
    blend_selection: Annotated[
        str,
        typer.Option(help="'one-se': the simplest blend within one standard error of the best "
                     "validation hit rate; 'best': the best rate."),
    ] = "one-se",
    budget: Annotated[
        float | None,
        typer.Option(help="Seconds for choosing and tuning the configuration on these events "
                     "(default scaled to the data: 10 minutes at 810k events)."),
    ] = None,
    retune: Annotated[
        bool,
        typer.Option(help="Search the configuration again even when the last one still fits "
                     "the data."),
    ] = False,
    no_select: Annotated[
        bool,
        typer.Option("--no-select", help="Train the fixed default configuration (no selection)."),
    ] = False,
    engine: Annotated[
        str,
        typer.Option(help="'local': this process (default); 'spark': Apache Spark (pip install "
                     "'personify[spark]', Java 17), RP3beta neighbours and lists, MLlib ALS, "
                     "the sources' parts, the ranker, no selection (docs/spark.md)."),
    ] = "local",
    master: Annotated[
        str,
        typer.Option(help="Spark master with --engine spark: local[*], local[N], "
                     "spark://HOST:PORT, yarn, k8s://..."),
    ] = "local[*]",
    events: Annotated[
        str | None,
        typer.Option(help="With --engine spark: the events as Parquet (a folder written by "
                     "`personify export events DIR --format parquet --partition-by date`, on "
                     "any Hadoop-compatible path); default: the event store, exported first."),
    ] = None,
) -> None:
    """Train on the event store, save a new model version and promote it.

    Without --model / --user-model / --no-select, the served configuration (user model,
    neighbour model, their parameters, then the blend) is chosen on a validation split of
    these events; a retrain reuses the last choice unless --retune or the data changed by
    half or more (docs/evaluation.md)."""
    tenant = _tenant(ctx, tenant)
    if engine not in ("local", "spark"):
        raise InvalidInput(f"unknown engine {engine!r}", field="engine", accepted="local, spark")
    if engine == "spark":
        _train_on_spark(ctx, tenant, master=master, events=events, user_model=user_model,
                        factors=factors, no_blend=no_blend, no_ranker=no_ranker,
                        no_promote=no_promote,
                        blend_selection=blend_selection, params=param)
        return
    if events is not None:
        raise InvalidInput("--events is read by --engine spark only", field="events",
                           accepted="--engine spark --events PATH")
    select = not no_select and model is None and user_model is None
    model = model or DEFAULT_MODEL
    user_model = user_model or DEFAULT_USER_MODEL
    if model not in available_models():
        raise InvalidInput(
            f"unknown model {model!r}", field="model", accepted=", ".join(available_models())
        )
    params = dict(DEFAULT_PARAMS) if model == DEFAULT_MODEL else {}
    for item in param or []:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise InvalidInput(f"bad --param {item!r}", field="param", accepted="NAME=VALUE")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    state = state_of(ctx)
    settings = state.settings()
    stores = state.stores(settings)
    runtime = open_runtime(stores, **settings.privacy_options())
    if user_model != "none" and user_model not in available_models():
        raise InvalidInput(
            f"unknown user model {user_model!r}", field="user_model",
            accepted="none, " + ", ".join(available_models()),
        )
    config = TrainingConfig(
        model=model, params=params, learn_blend=not no_blend, train_ranker=not no_ranker,
        user_model=None if user_model == "none" else user_model,
        user_params=dict(DEFAULT_USER_PARAMS) if user_model == DEFAULT_USER_MODEL else {},
        blend_selection=blend_selection,
    )
    if factors is not None:  # validated like the config's own default
        config = replace(config, factors=factors or None, factors_fixed=True)
    config = replace(config, weights=tenant_weights(stores, tenant, config.weights))
    plan = None
    if select:
        store = runtime.model_store(settings.model_dir)
        previous = _last_selection(store, tenant)
        plan = SelectionPlan(
            mode="retune" if retune else "auto", budget_seconds=budget,
            previous=previous[1] if previous else None,
            previous_version=previous[0] if previous else None,
        )
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("reading events", total=None)

        def seen(count: int) -> None:
            progress.update(task, description=f"reading events: {count:,}")

        def listed(done: int, total: int) -> None:
            progress.update(task, description=f"scoring people for lists: {done:,} / {total:,}")

        def trying(what: str) -> None:
            progress.update(task, description=f"selection: {what}"[:100])

        if plan is not None:
            plan.progress = trying

        manifest = train_tenant(
            stores.events,
            runtime.model_store(settings.model_dir),
            tenant,
            config,
            promote=not no_promote,
            progress=seen,
            list_progress=listed,
            catalog=stores.catalog,
            users=stores.users,
            privacy=runtime.training(),
            configure=plan.configure if plan is not None else None,
        )
    console.print(
        f"[green]trained[/green] {manifest.version} for tenant {tenant}: "
        f"{manifest.events_used:,} events in {manifest.fit_seconds:.1f}s"
        + (" (promoted)" if manifest.promoted else "")
    )
    if "promoted_as" in manifest.metrics:
        console.print(f"  promoted {_served(manifest.version, manifest.metrics['promoted_as'])}")
    if "excluded_events" in manifest.metrics:
        console.print(f"  [yellow]{explain_exclusions(manifest.metrics['excluded_events'])}[/]")
    for key in ("users", "items", "blend_weights", "ranker"):
        if key in manifest.metrics:
            console.print(f"  {key}: {manifest.metrics[key]}")
    if "selection" in manifest.metrics:
        chosen = Selection.from_dict(manifest.metrics["selection"])
        how = (f"reused from {chosen.reused_from}" if manifest.metrics["selection"].get(
            "reused_from") and not manifest.metrics["selection"].get("retune_reason")
            else f"{len(chosen.trials)} trials in {chosen.seconds:.0f}s, "
                 f"{chosen.protocol} validation")
        console.print(f"  selection: {chosen.user_model} {chosen.user_params} + neighbours "
                      f"{chosen.neighbour_model} ({how}); `personify models show "
                      f"{manifest.version}` lists every trial")


def _train_on_spark(
    ctx: typer.Context, tenant: str, *, master: str, events: str | None,
    user_model: str | None, factors: int | None, no_blend: bool, no_ranker: bool,
    no_promote: bool,
    blend_selection: str, params: list[str] | None,
) -> None:
    """``personify train --engine spark``: RP3beta neighbours and lists, MLlib ALS factors,
    popularity, the sources' parts, the blend on a sample, the impression ranker, the influence
    index; saved and promoted like a local
    training (``personify.jobs.spark.training``)."""
    import tempfile

    from personify.jobs.bulk_export import export_events_by_date
    from personify.jobs.spark.session import check_master, require_pyspark, spark_session
    from personify.jobs.spark.training import SparkRun, train_tenant_spark
    from personify.jobs.training import DEFAULT_FACTORS

    check_master(master)
    if params:
        raise InvalidInput("--param is not read by --engine spark", field="param",
                           accepted="the default RP3beta parameters")
    chosen = user_model or DEFAULT_MODEL
    config = TrainingConfig(
        model=DEFAULT_MODEL, params=dict(DEFAULT_PARAMS), learn_blend=not no_blend,
        train_ranker=not no_ranker, user_model=None if chosen == "none" else chosen,
        user_params=dict(DEFAULT_PARAMS) if chosen == DEFAULT_MODEL else {},
        blend_selection=blend_selection,
        factors=DEFAULT_FACTORS if factors is None else (factors or None),
    )
    state = state_of(ctx)
    settings = state.settings()
    stores = state.stores(settings)
    config = replace(config, weights=tenant_weights(stores, tenant, config.weights))
    custom_types = [*settings.custom_event_types, *_declared_types(stores, tenant)]
    runtime = open_runtime(stores, **settings.privacy_options())
    labels = {item.item_id: item.categories for item in stores.catalog.scan(tenant)
              if item.categories} if config.learn_blend else None
    with tempfile.TemporaryDirectory(prefix="personify-spark-") as scratch:
        path = events
        if path is None:
            path = f"{scratch}/events"
            report = export_events_by_date(path, stores, tenant)
            console.print(f"exported {report.rows:,} events for Spark in {report.seconds:.1f}s")
        ours = require_pyspark().SparkSession.getActiveSession() is None
        spark = spark_session(master)
        try:
            with console.status("training on Spark") as status:
                manifest = train_tenant_spark(
                    SparkRun(spark, path, custom_event_types=custom_types),
                    runtime.model_store(settings.model_dir), tenant, config,
                    privacy=runtime.training(), labels=labels, promote=not no_promote,
                    catalog=stores.catalog, users=stores.users,
                    progress=lambda done: status.update(f"training on Spark: {done} done"),
                )
        finally:
            if ours:  # a session the caller had (tests, notebooks) stays theirs
                spark.stop()
    console.print(
        f"[green]trained[/green] {manifest.version} for tenant {tenant} on Spark "
        f"({manifest.metrics['spark_master']}): {manifest.events_used:,} events in "
        f"{manifest.fit_seconds:.1f}s" + (" (promoted)" if manifest.promoted else "")
    )
    if "promoted_as" in manifest.metrics:
        console.print(f"  promoted {_served(manifest.version, manifest.metrics['promoted_as'])}")
    if "excluded_events" in manifest.metrics:
        console.print(f"  [yellow]{explain_exclusions(manifest.metrics['excluded_events'])}[/]")
    for key in ("users", "items", "blend_weights", "ranker", "spark_stages"):
        if key in manifest.metrics:
            console.print(f"  {key}: {manifest.metrics[key]}")


def _declared_types(stores: Any, tenant: str) -> list[str]:
    database = getattr(stores, "database", None)
    return list(SqlEventTypes(database).declared(tenant)) if database is not None else []


def tenant_weights(stores: Any, tenant: str, base: EventWeights) -> EventWeights:
    """``base`` plus the training weights of the tenant's declared event types."""
    database = getattr(stores, "database", None)
    declared = SqlEventTypes(database).weights(tenant) if database is not None else {}
    if not declared:
        return base
    return replace(base, weights={**base.weights, **declared})


def _last_selection(store: ErasureAwareModelStore, tenant: str
                    ) -> tuple[str, dict[str, Any]] | None:
    """The newest version's selection record (promoted first), if any."""
    versions = store.list(tenant)
    ordered = [m for m in versions if m.promoted] + sorted(
        (m for m in versions if not m.promoted), key=lambda m: m.created_at, reverse=True)
    for manifest in ordered:
        record = manifest.metrics.get("selection")
        if isinstance(record, dict):
            return manifest.version, record
    return None


@app.command("list")
def list_models(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: the default one).")] = None,
) -> None:
    """Every stored version, oldest first; the promoted one is marked."""
    tenant = _tenant(ctx, tenant)
    table = Table("version", "promoted", "model", "events", "fit s", "created")
    for m in _store(ctx).list(tenant):
        table.add_row(
            m.version,
            "yes" if m.promoted else "",
            str(m.params.get("model", "")),
            f"{m.events_used:,}",
            f"{m.fit_seconds:.1f}",
            m.created_at[:19],
        )
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="A version from `personify models list`.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: the default one).")] = None,
) -> None:
    """One version's configuration, metrics and, when it was chosen on validation, the table
    of every trial of the selection."""
    who = _tenant(ctx, tenant)
    found = [m for m in _store(ctx).list(who) if m.version == version]
    if not found:
        raise InvalidInput(f"no model version {version!r} for tenant {who!r}", field="version",
                           accepted="a version from `personify models list`")
    manifest = found[0]
    console.print(f"[bold]{manifest.version}[/bold]" + (" (promoted)" if manifest.promoted
                                                         else ""))
    console.print(f"  created {manifest.created_at[:19]}, {manifest.events_used:,} events, "
                  f"fit {manifest.fit_seconds:.1f}s")
    for key, value in manifest.params.items():
        console.print(f"  {key}: {value}")
    for key, value in manifest.metrics.items():
        if key not in ("selection", "blend_hit_rate@20"):
            console.print(f"  {key}: {value}")
    record = manifest.metrics.get("selection")
    if isinstance(record, dict):
        for line in selection_lines(Selection.from_dict(record), record):
            console.print(line)
        console.print(selection_table(Selection.from_dict(record)))


def selection_lines(selection: Selection, record: dict[str, Any]) -> list[str]:
    """The selection's summary above its table."""
    lines = [f"selection: {selection.protocol} validation ({selection.reason}); "
             f"{selection.validation_users:,} people ({selection.subsample_users:,} first), "
             f"{selection.seconds:.0f}s of a {selection.budget_seconds:.0f}s budget",
             f"  chosen by validation NDCG@20, one-standard-error rule: "
             f"{selection.user_model} {selection.user_params}",
             f"  best: {selection.best}",
             f"  neighbours: {selection.neighbour_model} {selection.neighbour_params}"]
    if record.get("reused_from") and not record.get("retune_reason"):
        lines.append(f"  reused from {record['reused_from']} (the data changed less than "
                     "x1.5 since; `personify train --retune` searches again)")
    elif record.get("retune_reason"):
        lines.append(f"  searched because: {record['retune_reason']}")
    for name, why in selection.skipped.items():
        lines.append(f"  not a candidate: {name} ({why})")
    return lines


def selection_table(selection: Selection) -> Table:
    """Every trial: model, parameters, validation metrics, fit time, memory (80 columns)."""
    table = Table("model", "parameters", "ndcg@20", "recall", "fit s", "MB", "", width=80,
                  title="trials (ndcg on the subsample in brackets when pruned; skipped: "
                        "the time budget was spent)")
    for trial in selection.trials:
        ndcg = (f"{trial.ndcg:.4f}" if trial.ndcg is not None else
                f"({trial.subsample_ndcg:.4f})" if trial.subsample_ndcg is not None else "-")
        params = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items()
                           if k not in ("solver", "T_b", "K_b", "K_s", "similarity"))
        table.add_row(trial.model, params, ndcg,
                      f"{trial.recall:.4f}" if trial.recall is not None else "",
                      f"{trial.fit_seconds:.1f}", f"{trial.memory_mb:.0f}",
                      "skipped" if trial.status == "skipped"  # the budget was spent
                      else trial.note or (trial.status if trial.status != "complete" else ""))
    return table


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@app.command("promote")
def promote(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="A version from `personify models list`.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: the default one).")] = None,
) -> None:
    """Serve ``version`` from now on (servers swap it in within seconds). People erased after
    it was trained are subtracted first (a new derived version is served); a version that
    cannot be cleaned (no influence index) is refused."""
    served = _store(ctx).promote(_tenant(ctx, tenant), version)
    console.print(f"[green]promoted[/green] {_served(version, served)}")


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: the default one).")] = None,
) -> None:
    """Go back to the version promoted before the current one (cleaned of later erasures,
    or refused, like ``promote``)."""
    store = _store(ctx)
    who = _tenant(ctx, tenant)
    history = store.history(who)
    served = store.rollback(who)
    previous = history[-2] if len(history) >= 2 else served
    console.print(f"[green]rolled back[/green] to {_served(previous, served)}")


def register(root: typer.Typer) -> None:
    root.command("train")(train)
