"""``personify insights fit | show``: the insights batch job and one person's insights."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from personify.cli.context import state_of
from personify.cli.privacy import insights_service
from personify.domain.errors import InvalidInput
from personify.domain.tenants import validate_tenant_id
from personify.jobs.insights import evaluate_predictions, fit_insights
from personify.privacy.runtime import open_runtime

app = typer.Typer(help="Behavioural profiles, predictions and segments.", no_args_is_help=True)
console = Console(soft_wrap=True)

TenantOption = Annotated[str | None, typer.Option(help="Tenant (default: the default one).")]


def _as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"bad --as-of {value!r}", field="as_of",
                           accepted="an ISO date or date-time, e.g. 2011-09-01") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("fit")
def fit(
    ctx: typer.Context,
    tenant: TenantOption = None,
    as_of: Annotated[str | None, typer.Option(
        help="Use events up to this date (ISO); default: now.")] = None,
    predictions: Annotated[bool, typer.Option(
        help="Also train churn / propensity (LightGBM, the train extra) and score everyone.",
    )] = False,
    clusters: Annotated[bool, typer.Option(
        help="Also cluster people on behavioural features (scikit-learn, the train extra).",
    )] = False,
) -> None:
    """Fit the population artefact (BG/NBD, Gamma-Gamma, RFM edges, price references) from the
    events that profiling consent admits, and save it under the model directory."""
    state = state_of(ctx)
    settings = state.settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    stores = state.stores(settings)
    runtime = open_runtime(stores, **settings.privacy_options())
    result = fit_insights(
        stores, settings.model_dir, tenant,
        event_filter=runtime.training().event_filter(tenant), as_of=_as_of(as_of),
        predictions=predictions, clusters=clusters,
    )
    population = result.population
    bg = population.bgnbd
    console.print(
        f"Fitted insights for {tenant}: {population.customers} customers in "
        f"{result.seconds:.1f}s -> {result.path}"
    )
    if bg is not None:
        console.print(f"BG/NBD r={bg.r:.3f} alpha={bg.alpha:.3f} a={bg.a:.3f} b={bg.b:.3f}")
    else:
        console.print("BG/NBD not fitted: fewer than 20 customers with purchases.")
    if predictions:
        for name in ("churn", "propensity"):
            info = population.scores_model.get(name, {})
            console.print(f"{name}: " + (f"trained on {info['people']} people"
                                         if info.get("trained") else str(info.get("reason"))))
        console.print(f"scored {len(population.scores)} people")
    if clusters:
        _print_clusters(population.clusters)


def _print_clusters(found: dict[str, Any]) -> None:
    if not found.get("fitted"):
        console.print(f"clusters: {found.get('reason', 'not fitted')}")
        return
    agreement = found.get("agreement_with_previous")
    console.print(
        f"clusters: k={found['k']} by {found['criterion']}, silhouette {found['silhouette']}"
        + (f", agreement with the previous fit {agreement:.1%}" if agreement is not None else ""))
    table = Table("cluster", "people", "share", "what distinguishes it")
    for c in found["clusters"]:
        table.add_row(c["id"], str(c["size"]), f"{c['share']:.1%}", c["description"]["en"])
    console.print(table)


@app.command("clusters")
def clusters_command(ctx: typer.Context, tenant: TenantOption = None) -> None:
    """The clusters of the last ``personify insights fit --clusters``: size, share and what
    distinguishes each (the description in English; the API answers both languages)."""
    from personify.insights.population import PopulationFiles

    state = state_of(ctx)
    settings = state.settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    population = PopulationFiles(settings.model_dir).load(tenant)
    _print_clusters(population.clusters if population is not None else {
        "reason": "no insights fitted yet (personify insights fit --clusters)"})


@app.command("show")
def show(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(help="The person's user id.")],
    tenant: TenantOption = None,
) -> None:
    """One person's insights as JSON (what GET /v1/users/{id}/insights answers)."""
    state = state_of(ctx)
    settings = state.settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    runtime = open_runtime(state.stores(settings), **settings.privacy_options())
    insights = insights_service(runtime, settings).insights(tenant, user_id)
    typer.echo(orjson.dumps(insights.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())


def _tracker(settings: Any) -> Any:
    from personify.insights.segments import SegmentCounts, SegmentFiles, SegmentTracker

    clock = lambda: datetime.now(UTC)  # noqa: E731
    return SegmentTracker(SegmentFiles(settings.model_dir, clock), clock,
                          history=SegmentCounts(settings.model_dir))


@app.command("segments")
def segments(
    ctx: typer.Context,
    tenant: TenantOption = None,
    counts: Annotated[str | None, typer.Option(
        help="Print this segment's stored member counts over time instead.")] = None,
    days: Annotated[int, typer.Option(min=1, max=3650, help="With --counts: the last N days.")
                    ] = 30,
) -> None:
    """The tenant's live segments (rule, newest stored member count), or one segment's stored
    counts over time (snapshots written by the server hourly and by every full refresh)."""
    from datetime import timedelta

    from personify.domain.errors import NotFound

    state = state_of(ctx)
    settings = state.settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    tracker = _tracker(settings)
    defined = tracker.files.all(tenant)
    if counts is not None:
        if counts not in defined:
            raise NotFound(f"no segment {counts!r}", field="counts",
                           accepted="one of: " + (", ".join(sorted(defined)) or "none defined"))
        since = datetime.now(UTC) - timedelta(days=days)
        table = Table("at (UTC)", "members")
        for at, n in tracker.history.series(tenant, counts, since=since):
            table.add_row(at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"), str(n))
        console.print(table)
        return
    stored = tracker.history.read(tenant, limit=1)
    latest = stored[-1][1] if stored else {}
    table = Table("segment", "name", "rule", "members (newest snapshot)")
    for sid, segment in sorted(defined.items()):
        table.add_row(sid, segment.name, segment.text, str(latest.get(sid, "-")))
    console.print(table)
    if stored:
        console.print(f"snapshot of {stored[-1][0].astimezone(UTC):%Y-%m-%d %H:%M} UTC")


@app.command("refresh-segments")
def refresh_segments(ctx: typer.Context, tenant: TenantOption = None) -> None:
    """Evaluate every person's segments now (as POST /v1/segments/refresh does, in this
    process: no entry / exit events) and store the counts as a snapshot."""
    import time

    state = state_of(ctx)
    settings = state.settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    stores = state.stores(settings)
    runtime = open_runtime(stores, **settings.privacy_options())
    service = insights_service(runtime, settings)
    service.tracker = _tracker(settings)
    started = time.perf_counter()
    people, offset = 0, 0
    while True:
        page = stores.users.list(tenant, limit=1000, offset=offset)
        service.refresh_many(tenant, page)
        people += len(page)
        offset += len(page)
        if len(page) < 1000:
            break
    found = service.tracker.snapshot(tenant)
    console.print(f"{people} people evaluated in {time.perf_counter() - started:.1f}s: "
                  + (", ".join(f"{k} {v}" for k, v in sorted(found.items())) or "no segments"))


@app.command("topics")
def topics(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="The text to label.")],
    tenant: TenantOption = None,
    n: Annotated[int, typer.Option(min=1, max=20, help="How many topics.")] = 3,
    labels: Annotated[str, typer.Option(
        help="Which item labels are the topics: categories or tags.")] = "categories",
) -> None:
    """The tenant's own topics of a text: a topic model fitted now from the catalogue's labelled
    items (title and description -> categories or tags), NumPy only."""
    from personify.insights.topics import TopicModel

    if labels not in ("categories", "tags"):
        raise InvalidInput(f"bad --labels {labels!r}", field="labels",
                           accepted="categories or tags")
    state = state_of(ctx)
    settings = state.settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    stores = state.stores(settings)
    texts, targets = [], []
    for item in stores.catalog.scan(tenant):
        wanted = list(item.categories if labels == "categories" else item.tags)
        body = " ".join(x for x in (item.title, item.description) if x)
        if wanted and body.strip():
            texts.append(body)
            targets.append(wanted)
    if not texts:
        raise InvalidInput(f"no item of {tenant!r} has both a text and {labels}",
                           field="labels", accepted="items with a title or description and "
                                                    f"{labels} (PUT /v1/items/{{id}})")
    model = TopicModel.fit(texts, targets)
    table = Table("topic", "score")
    for topic in model.predict(text, n):
        table.add_row(topic.label, f"{topic.score:.3f}")
    console.print(table)
    console.print(f"learnt from {len(texts)} items, {len(model.names)} {labels}")


@app.command("train-text")
def train_text(
    datasets: Annotated[str, typer.Option(
        help="Folder holding ru_emotion/ and en_goemotions/ (../shared/datasets).")],
    output: Annotated[str, typer.Option(
        "--output", "-o", help="Where to write the artefacts (the shipped ones live in "
        "src/personify/insights/text_models).")],
    lemmas: Annotated[bool, typer.Option(
        help="The emotion models also read each word's lemma (pymorphy3 / simplemma of the "
             "text extra; Snowball stems without it).")] = False,
) -> None:
    """Rebuild the text models (language word list, keyword tables, RU / EN emotion and
    sentiment weights) from CEDR, ru-goemotions and GoEmotions (needs the train extra)."""
    from personify.jobs.text_models import train_text_models

    source = Path(datasets)
    for needed in ("ru_emotion/cedr.csv.gz", "en_goemotions/goemotions.csv.gz"):
        if not (source / needed).is_file():
            raise InvalidInput(f"{source / needed} not found", field="datasets",
                               accepted="the shared datasets folder with ru_emotion/ and "
                                        "en_goemotions/")
    result = train_text_models(source, Path(output), log=console.print, lemmas=lemmas)
    console.print(f"trained in {result.seconds:.0f}s -> {result.directory}")
    for name, size in result.files.items():
        console.print(f"  {name}: {size:,} bytes")


@app.command("text")
def analyse_text(
    text: Annotated[str, typer.Argument(help="A text to analyse (RU / EN).")],
) -> None:
    """Language, sentiment, emotions and keywords of one text, as JSON (the models the server
    uses for people's texts)."""
    from personify.insights.text import default_analyzer, keywords

    analyzer = default_analyzer()
    analysis = analyzer.analyse(text)
    models = analyzer.models()
    answer: dict[str, Any] = {"language": analysis.language, "sentiment": None,
                              "emotions": None, "keywords": []}
    if analysis.scores is not None and analysis.language is not None:
        answer["sentiment"] = analysis.scores.sentiment
        answer["emotions"] = analysis.scores.emotions
        answer["predicted_emotions"] = models[1][analysis.language].predict_emotions(
            analysis.cleaned, cleaned=True)
        answer["keywords"] = [k.keyword for k in keywords(
            [(analysis.language, analysis.cleaned)], models[2], n=10)]
    typer.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())


def evaluate_predictions_command(
    ctx: typer.Context,
    tenant: TenantOption = None,
    end: Annotated[str | None, typer.Option(
        help="End of the last label window (ISO); default: the day after the newest event.",
    )] = None,
    rounds: Annotated[int, typer.Option(min=20, max=5000, help="Bootstrap resamples.")] = 200,
    output: Annotated[str | None, typer.Option("--output", "-o",
                                               help="Also write the full report (JSON).")] = None,
) -> None:
    """Churn (90 days) and propensity (30 days) models against the recency rule and BG/NBD on
    one temporal split: AUC, PR-AUC, Brier, lift at 10 %, bootstrap intervals, calibration."""
    state = state_of(ctx)
    settings = state.settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    stores = state.stores(settings)
    runtime = open_runtime(stores, **settings.privacy_options())
    report = evaluate_predictions(
        stores, tenant, event_filter=runtime.training().event_filter(tenant), end=_as_of(end),
        rounds=rounds,
    )
    for task in ("churn", "propensity"):
        part: dict[str, Any] = report[task]  # type: ignore[assignment]
        table = Table(f"{task} ({part['people_test']} people, "
                      f"{part['positive_rate_test']:.1%} positive)",
                      "AUC", "PR-AUC", "Brier", "lift@10%", "AUC gain of the model (95% CI)")
        for name in ("model", "recency_rule", "bgnbd", "bgnbd_no_purchase"):
            m = part[name]
            gain = part.get(f"vs_{name}")
            ci = (f"{gain['auc_difference']:+.3f} [{gain['auc_difference_ci95'][0]:+.3f}, "
                  f"{gain['auc_difference_ci95'][1]:+.3f}]") if gain else ""
            table.add_row(name, f"{m['auc']:.3f}", f"{m['pr_auc']:.3f}", f"{m['brier']:.4f}",
                          f"{m['lift_at_10pct']:.2f}", ci)
        console.print(table)
        plot = Table("predicted", "observed", "people", title=f"{task} calibration (deciles)")
        for row in part["calibration"]:
            plot.add_row(f"{row['predicted']:.3f}", f"{row['observed']:.3f}", str(row["people"]))
        console.print(plot)
    value: dict[str, Any] = report["clv"]  # type: ignore[assignment]
    if value.get("fitted"):
        console.print(f"CLV (BG/NBD + Gamma-Gamma, 90 days): Spearman {value['spearman']:.3f}, "
                      f"top-decile capture {value['top_decile_capture']:.1%} (last-90-days spend: "
                      f"{value['naive_last_90_days_spearman']:.3f}, "
                      f"{value['naive_top_decile_capture']:.1%})")
    if output:
        Path(output).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        console.print(f"wrote {output}")


def register(main: typer.Typer) -> None:
    """Add ``evaluate-predictions`` as a top-level command."""
    main.command("evaluate-predictions")(evaluate_predictions_command)
