"""``personify train --engine spark`` (Spark local mode): the bundle equals the in-process
bundle on the same events (popularity, neighbour lists and per-person lists up to floating-point
ties, the sources' parts including the past visits of ``session_knn``, the LambdaRank ranker
learned from the impressions), implicit ALS from MLlib is as good as ``implicit`` on planted
structure, the privacy gate keeps people without consent, restricted and erased people out, and
bad input fails naming the file and the row group with nothing promoted."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personify.algorithms._sparse import positive_matrix
from personify.domain.consents import ConsentRecord
from personify.domain.errors import InvalidInput
from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.users import User
from personify.ingestion import EventIngestor
from personify.jobs.bulk_export import export_events_by_date
from personify.jobs.spark.training import (
    SparkRun,
    SparkTraining,
    check_config,
    train_on_spark,
    train_tenant_spark,
)
from personify.jobs.training import TrainingConfig, train_tenant
from personify.privacy.runtime import open_runtime
from personify.serving.bundle import ModelBundle
from personify.storage.model_files import FileModelStore
from personify.storage.registry import open_stores

pytestmark = pytest.mark.timeout(1200)  # Spark on a loaded 2-core machine; ~1 min when idle
T = "default"
NOW = datetime.now(UTC).replace(microsecond=0)
RP3 = {"k": 10, "alpha": 0.8, "beta": 0.3}
CONFIG = TrainingConfig(
    params=dict(RP3), user_model="rp3beta", user_params=dict(RP3), list_length=5,
    learn_blend=False, train_ranker=True, ranker_min_groups=30, factors=8,
    factor_params={"iterations": 6, "regularization": 0.05, "alpha": 10.0},
)
CLUSTER = 16  # items i0..i15 are cluster 0, i16..i31 cluster 1; person u<n> is in cluster n % 2
OUTSIDERS = {"nc": "denied consent", "er": "erased", "rs": "restricted"}
SHOWN = 6  # items per logged impression
FEATURE = "collaborative"  # the source score the impressions log (a ranker feature)


def _impressions(rng: random.Random) -> list[Event]:
    """Logged impressions with feedback: the clicked item is one the logged source scored low
    (the blend ranks it last, a ranker learns to lift it); one by a person without consent."""
    out: list[Event] = []
    for n in range(60):
        who = "nc" if n == 59 else f"u{n % 48}"
        home = (n % 2) * CLUSTER
        shown = [f"i{home + (n + k) % CLUSTER}" for k in range(SHOWN)]
        scores = [round(1.0 - 0.1 * k + 0.01 * rng.random(), 4) for k in range(SHOWN)]
        at = NOW - timedelta(hours=rng.randint(1, 800), seconds=n)
        rec = f"r{n}"
        out.append(Event(event_id=f"imp{n}", type="impression", user_id=who, item_ids=shown,
                         recommendation_id=rec, timestamp=at,
                         properties={f"score_{FEATURE}": scores},
                         context={"device": ("mobile", "desktop")[n % 2]}))
        clicked = SHOWN - 1 - rng.randrange(2)
        out.append(Event(event_id=f"clk{n}", type="click", user_id=who, item_id=shown[clicked],
                         recommendation_id=rec, timestamp=at + timedelta(minutes=1)))
        if n % 3 == 0:
            out.append(Event(event_id=f"buy{n}", type="purchase", user_id=who,
                             item_id=shown[clicked], recommendation_id=rec,
                             timestamp=at + timedelta(minutes=2)))
    return out


def _events() -> list[Event]:
    rng = random.Random(7)
    out: list[Event] = []
    for u in range(48):
        home = (u % 2) * CLUSTER
        for n in range(rng.randint(5, 11)):
            inside = rng.random() < 0.9
            item = home + rng.randrange(CLUSTER) if inside else rng.randrange(2 * CLUSTER)
            kind = rng.choice(["view", "view", "click", "purchase", "like", "dislike"])
            out.append(Event(event_id=f"e{u}-{n}", type=kind, user_id=f"u{u}",
                             item_id=f"i{item}",
                             timestamp=NOW - timedelta(hours=rng.randint(1, 900))))
        out.append(Event(event_id=f"s{u}", type="search", user_id=f"u{u}", query="lamp",
                         timestamp=NOW - timedelta(hours=2)))
        # orders of several items (one timestamp each), some bought again in a later order
        for order in range(1 + (u % 3 == 0)):
            when = NOW - timedelta(hours=100 + 7 * u + 300 * order)
            for n, item in enumerate({home, home + 1, home + 2 + u % 5}):
                out.append(Event(event_id=f"b{u}-{order}-{n}", type="purchase",
                                 user_id=f"u{u}", item_id=f"i{item}", timestamp=when))
    out.extend(_impressions(rng))
    for who in OUTSIDERS:  # each with an item nobody else has, and popular items
        for n, item in enumerate([f"only-{who}", "i0", "i1", "i16", f"only-{who}"]):
            out.append(Event(event_id=f"{who}-{n}", type="purchase", user_id=who, item_id=item,
                             timestamp=NOW - timedelta(hours=3 + n)))
    return out


@dataclass
class Trained:
    local: ModelBundle
    local_excluded: dict[str, int]
    local_events: int
    spark: SparkTraining
    local_ranker: dict[str, Any]


@pytest.fixture(scope="module")
def trained(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """Both engines once, on the same stored events and the same privacy runtime."""
    root = tmp_path_factory.mktemp("spark-train")
    with open_stores("memory://") as stores:
        assert len(EventIngestor(stores.events).ingest(T, _events()).stored) == len(_events())
        stores.users.upsert(T, [User(user_id="rs", restricted=True)] + [
            User(user_id=f"u{u}", profile={"time_zone": "Europe/Berlin", "country": "DE"})
            for u in range(0, 48, 3)])
        stores.catalog.upsert(T, [
            Item(item_id=f"i{i}", title=f"item {i}", price=float(5 + i),
                 created_at=NOW - timedelta(days=30 + i)) for i in range(0, 2 * CLUSTER, 2)])
        stores.consents.append(T, ConsentRecord(user_id="nc", purpose="profiling",
                                                state="denied"))
        export_events_by_date(root / "events", stores, T)  # an export older than the erasure
        runtime = open_runtime(stores, demo=True)  # profiling opt-out: others train
        models = runtime.model_store(root / "models")
        runtime.erasure().erase_user(T, "er")
        manifest = train_tenant(stores.events, models, T, CONFIG, promote=False,
                                privacy=runtime.training(), catalog=stores.catalog,
                                users=stores.users)
        local = models.load(T, manifest.version)[1]
        result = train_on_spark(SparkRun(spark, str(root / "events"), partitions=2), T, CONFIG,
                                privacy=runtime.training(), catalog=stores.catalog,
                                users=stores.users)
        yield Trained(local, manifest.metrics.get("excluded_events", {}),
                      manifest.events_used, result, manifest.metrics.get("ranker", {}))


def _rows(bundle: ModelBundle) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    m = bundle.neighbours.tocsr()
    for i, item in enumerate(bundle.items.ids):
        lo, hi = m.indptr[i], m.indptr[i + 1]
        out[item] = {bundle.items.ids[j]: float(v) for j, v in
                     zip(m.indices[lo:hi], m.data[lo:hi], strict=True)}
    return out


def _same_up_to_ties(a: dict[str, float], b: dict[str, float], what: str) -> None:
    """Equal scores on common items; an item in one list only ties with the other's last."""
    for key in set(a) & set(b):
        assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-7), (what, key)
    for one, other in ((a, b), (b, a)):
        floor = min(other.values()) if other else 0.0
        for key in set(one) - set(other):
            assert one[key] == pytest.approx(floor, rel=1e-4, abs=1e-7), (what, key)
    assert len(a) == len(b), what


@pytest.mark.spark
def test_popularity_and_neighbours_equal_in_process(trained: Trained) -> None:
    local, remote = trained.local, trained.spark.bundle
    assert sorted(local.items.ids) == sorted(remote.items.ids)
    assert trained.spark.manifest.events_used == trained.local_events
    pop_local = dict(zip(local.items.ids, local.popularity.tolist(), strict=True))
    pop_spark = dict(zip(remote.items.ids, remote.popularity.tolist(), strict=True))
    for item, value in pop_local.items():
        assert pop_spark[item] == pytest.approx(value, rel=1e-5), item
    rows_local, rows_spark = _rows(local), _rows(remote)
    assert sum(map(len, rows_local.values())) > 100  # top-10 rows, most of them full
    for item in rows_local:
        _same_up_to_ties(rows_local[item], rows_spark[item], f"neighbours of {item}")


@pytest.mark.spark
def test_source_parts_equal_in_process(trained: Trained) -> None:
    """Time of day, basket rules and repeat propensity: the in-process trainers' parts."""
    local, remote = trained.local.parts, trained.spark.bundle.parts
    assert set(local) == set(remote) == {
        "time_of_day", "bought_together", "buy_again", "session_knn"}
    lt, rt = local["time_of_day"], remote["time_of_day"]
    for hour in range(24):
        at_local = dict(zip(lt.items.ids, lt.by_hour[hour].tolist(), strict=True))
        at_spark = dict(zip(rt.items.ids, rt.by_hour[hour].tolist(), strict=True))
        assert at_local == pytest.approx(at_spark, rel=1e-5, abs=1e-7), hour
        # the hour's best items: the same scores (items tied there may come in either order)
        assert [v for _, v in lt.at(hour, 5)] == pytest.approx(
            [v for _, v in rt.at(hour, 5)], rel=1e-5), hour
    la, ra = local["buy_again"], remote["buy_again"]
    assert {i: la.of(i) for i in la.items.ids} == pytest.approx(
        {i: ra.of(i) for i in la.items.ids}, rel=1e-6)
    assert len({round(la.of(i), 4) for i in la.items.ids}) > 2  # repeaters differ from others
    lb, rb = local["bought_together"], remote["bought_together"]
    assert lb.rules.nnz > 20
    for item in lb.items.ids:
        _same_up_to_ties(dict(lb.together(item, 200)), dict(rb.together(item, 200)),
                         f"bought together with {item}")


@pytest.mark.spark
def test_past_visits_equal_in_process(trained: Trained) -> None:
    """``session_knn``: the same visits (cut at 30 minutes without activity), numbered alike
    (by start, then person), so the same session x item matrix and the same answers."""
    local, remote = trained.local.part("session_knn"), trained.spark.bundle.part("session_knn")
    assert local is not None and remote is not None
    assert remote.sessions == local.sessions > 48  # people come back: more visits than people

    def rows(part: Any) -> list[set[str]]:
        m = part.model.S_.tocsr()
        return [{part.items.ids[j] for j in m.indices[m.indptr[r]:m.indptr[r + 1]]}
                for r in range(m.shape[0])]

    assert rows(remote) == rows(local)
    assert remote.model.session_norms_ == pytest.approx(local.model.session_norms_)
    for visit in (["i0"], ["i3", "i5"], ["i16", "i17", "i20"], ["i2", "i18"]):
        ours, theirs = local.recommend(visit, 10), remote.recommend(visit, 10)
        assert ours, visit
        assert dict(theirs) == pytest.approx(dict(ours), rel=1e-6), visit


@pytest.mark.spark
def test_ranker_equals_in_process(trained: Trained) -> None:
    """The LambdaRank ranker from the impressions: the same query groups, features and labels
    (computed in Spark partitions), so the same LightGBM model, kept for beating the blend."""
    local, remote = trained.local.ranker, trained.spark.bundle.ranker
    metrics = trained.spark.manifest.metrics["ranker"]
    assert local is not None and remote is not None, (trained.local_ranker, metrics)
    assert metrics["groups"] == trained.local_ranker["groups"] == 59  # "nc"'s is gated out
    assert metrics["valid_ndcg@10_ranker"] == pytest.approx(
        trained.local_ranker["valid_ndcg@10_ranker"])
    assert metrics["valid_ndcg@10_ranker"] > metrics["valid_ndcg@10_blend"]
    assert remote.model_text == local.model_text
    rng = np.random.default_rng(3)
    probe = rng.normal(size=(40, len(remote.feature_names))).astype(np.float32)
    assert remote.predict(probe) == pytest.approx(local.predict(probe))


@pytest.mark.spark
def test_person_lists_equal_in_process(trained: Trained) -> None:
    """The lists scored in Spark partitions equal the in-process list builder's
    (``build_user_lists``) given the same neighbour matrix (the neighbours themselves equal the
    in-process ones up to ties at the k-th value, which then move list scores)."""
    from personify.algorithms.rp3beta import RP3beta
    from personify.data.events import interactions_from_events
    from personify.jobs.user_lists import build_user_lists

    local, remote = trained.local, trained.spark.bundle
    assert local.user_lists is not None and remote.user_lists is not None
    assert sorted(local.user_lists.users.ids) == sorted(remote.user_lists.users.ids)
    people = remote.user_lists.users
    kept = [e for e in _events() if e.user_id not in OUTSIDERS]
    data = interactions_from_events(kept, CONFIG.weights, items=remote.items, users=people)
    model = RP3beta(**RP3)._fitted(remote.neighbours, positive_matrix(data, binary=True))
    expected = build_user_lists(model, data, remote.neighbours, k=CONFIG.list_length)
    listed = 0
    for person in people.ids:
        a, b = expected.row(person), remote.user_lists.row(person)
        assert (a is None) == (b is None), person
        assert (local.user_lists.row(person) is None) == (b is None), person
        if a is None or b is None:
            continue
        listed += 1
        ours = {remote.items.ids[i]: float(s) for i, s in zip(a[0], a[1], strict=True)}
        theirs = {remote.items.ids[i]: float(s) for i, s in zip(b[0], b[1], strict=True)}
        _same_up_to_ties(ours, theirs, f"list of {person}")
        assert list(b[1]) == sorted(b[1], reverse=True)
        anchors = dict(zip(a[0].tolist(), a[2].tolist(), strict=True))
        for item, anchor in zip(b[0], b[2], strict=True):  # the history item raising it most
            if item in anchors:
                assert remote.neighbours[anchor, item] == pytest.approx(
                    remote.neighbours[anchors[item], item], rel=1e-5)
    assert listed == 48


def _cluster_purity(factors: np.ndarray, ids: list[str]) -> float:
    """Share of each item's 5 nearest items (cosine of factors) in its own cluster."""
    keep = [n for n, i in enumerate(ids) if i.startswith("i")]
    f = factors[keep]
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-9)
    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)
    cluster = np.array([int(ids[n][1:]) // CLUSTER for n in keep])
    top = np.argsort(-sim, axis=1)[:, :5]
    return float((cluster[top] == cluster[:, None]).mean())


@pytest.mark.spark
def test_mllib_als_quality_within_tolerance_of_implicit(trained: Trained) -> None:
    local, remote = trained.local, trained.spark.bundle
    assert local.factors is not None and remote.factors is not None
    assert remote.factors.item_factors.shape == (len(remote.items), 8)
    assert remote.factors.params["engine"] == "spark-mllib"
    ours = _cluster_purity(local.factors.item_factors, local.items.ids)
    theirs = _cluster_purity(remote.factors.item_factors, remote.items.ids)
    assert theirs >= 0.75, theirs  # the planted clusters are found
    assert theirs >= ours - 0.15, (theirs, ours)  # stated tolerance (docs/spark.md)


@pytest.mark.spark
def test_privacy_gate_keeps_outsiders_out(trained: Trained) -> None:
    result = trained.spark
    bundle = result.bundle
    for who in OUTSIDERS:
        assert f"only-{who}" not in bundle.items.ids
        assert bundle.user_lists is not None and who not in bundle.user_lists.users.ids
    excluded = result.manifest.metrics["excluded_events"]
    # 5 purchases each; the person without consent also an impression and a click
    assert excluded == {"erased": 5, "consent denied": 7, "restricted": 5}
    # in-process, the erased person's events are gone from the store; the rest is refused alike
    assert trained.local_excluded == {"consent denied": 7, "restricted": 5}
    assert result.influence is not None
    assert len(result.influence.keys) == len(bundle.user_lists.users)
    assert result.influence.x.shape == (len(bundle.user_lists.users), len(bundle.items))


def _write_parquet(path: Path, types: list[str], groups: int = 2) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from personify.jobs.bulk_export import _arrow_schema, flat_columns

    schema = _arrow_schema(flat_columns("events"))
    n = len(types)
    columns = {name: [None] * n for name in schema.names}
    columns.update(type=types, user_id=[f"u{k}" for k in range(n)],
                   item_id=[f"i{k % 3}" for k in range(n)], event_id=[f"e{k}" for k in range(n)],
                   timestamp=[NOW - timedelta(hours=k) for k in range(n)])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path,
                   row_group_size=max(1, n // groups), compression="none")


def _fails(spark: Any, path: Path, tmp_path: Path) -> InvalidInput:
    """Train and expect a clear failure; nothing saved, nothing promoted."""
    models = FileModelStore(tmp_path / "models")
    with pytest.raises(InvalidInput) as caught:
        train_tenant_spark(SparkRun(spark, str(path), partitions=2), models, T,
                           TrainingConfig(params=dict(RP3), user_model="rp3beta",
                                          user_params=dict(RP3), learn_blend=False,
                                          factors=None, train_ranker=False))
    assert models.list(T) == [] and models.promoted_version(T) is None
    assert caught.value.field == "events"
    return caught.value


@pytest.mark.spark
def test_no_events_fail_clearly(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "no Parquet files under" in _fails(spark, tmp_path / "empty", tmp_path).message
    assert "does not exist" in _fails(spark, tmp_path / "nowhere", tmp_path).message
    only_searches = tmp_path / "searches" / "date=2024-01-01" / "part-00000.parquet"
    _write_parquet(only_searches, ["search"] * 4)
    assert "not enough events" in _fails(spark, only_searches.parent.parent, tmp_path).message


@pytest.mark.spark
def test_malformed_parquet_names_file_and_row_group(spark: Any, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    good = tmp_path / "events" / "date=2024-01-01" / "part-00000.parquet"
    bad = tmp_path / "events" / "date=2024-01-02" / "part-00000.parquet"
    _write_parquet(good, ["view"] * 8)
    _write_parquet(bad, ["view"] * 8, groups=2)
    meta = pq.ParquetFile(bad).metadata
    assert meta.num_row_groups == 2
    column = meta.row_group(1).column(meta.schema.to_arrow_schema().names.index("type"))
    offset = column.dictionary_page_offset or column.data_page_offset
    with open(bad, "r+b") as fh:  # garbage over the second row group's first page header
        fh.seek(offset)
        fh.write(b"\xff" * 24)  # (a column the trainer reads)
    error = _fails(spark, tmp_path / "events", tmp_path)
    assert str(bad) in error.message and "row group 1" in error.message
    shutil.copy(good, bad)
    with open(bad, "r+b") as fh:  # a truncated footer: not Parquet at all
        fh.truncate(bad.stat().st_size - 9)
    error = _fails(spark, tmp_path / "events", tmp_path)
    assert str(bad) in error.message and "not a readable Parquet file" in error.message


@pytest.mark.spark
def test_unknown_event_types_name_file_and_row_group(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "events" / "date=2024-01-01" / "part-00000.parquet"
    _write_parquet(path, ["view"] * 6 + ["teleport"] * 2, groups=4)
    error = _fails(spark, tmp_path / "events", tmp_path)
    assert "unknown event type(s) 'teleport'" in error.message
    assert str(path) in error.message and "row group 3" in error.message
    assert "view" in (error.accepted or "")


def test_dense_user_models_are_refused_with_the_single_machine_limit() -> None:
    for model in ("bspm", "ease"):
        with pytest.raises(InvalidInput, match="stops at about") as caught:
            check_config(TrainingConfig(user_model=model), 24 << 30)
        assert caught.value.field == "user_model"
        assert "--engine local" in (caught.value.accepted or "")
    with pytest.raises(InvalidInput, match="RP3beta neighbours"):
        check_config(TrainingConfig(model="itemknn", user_model=None), 24 << 30)
    check_config(TrainingConfig(user_model="rp3beta", user_params=dict(RP3), params=dict(RP3)),
                 24 << 30)
