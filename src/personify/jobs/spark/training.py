"""``personify train --engine spark``: the served ``ModelBundle`` trained on Apache Spark.

What runs where:

* **Spark** (executors): reading the Parquet events, the privacy gate's anti-join, the event
  weights, the aggregation to one row per person and item, decayed popularity, the RP3beta
  item-item matrix (per user partition a sparse ``X^T D X`` product, summed by a shuffle, then
  the top ``k`` per item), implicit ALS (Spark MLlib, ``implicitPrefs``) and the per-person
  lists (each partition multiplies its people's histories by the broadcast neighbour matrix),
  and the sources' trained parts: time of day, basket rules, repeat propensity, past visits
  (``jobs.spark.parts``), and the impression ranker's query groups and features
  (``jobs.spark.ranker``).
* **the driver**: the vocabularies, the bundle itself (neighbours ``n_items x k``, lists
  ``people x 100``, factors) and the erasure influence index (one sparse row per person: the
  format the servers read), gathered through Arrow; never a dense items x items matrix.
* **the in-process learner on a sample**: the blend weights (``jobs.blend_training``) are
  learned by the single-machine code on at most ``blend_sample_users`` people gathered to the
  driver (their person x item rows), not on everyone; LightGBM's LambdaRank fit of the
  impression ranker on at most ``ranker_sample_groups`` impressions with feedback (the newest).

Not distributed (refused with the single-machine limit in the message): user models other than
RP3beta (BSPM, EASE, GF-CF, iALS lists ...) and the configuration selection.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms.ease import ease_memory_bytes
from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.domain.errors import InvalidInput
from personify.jobs.blend_training import learn_source_weights
from personify.jobs.spark.input import read_events
from personify.jobs.spark.parts import source_parts_on_spark
from personify.jobs.spark.ranker import SAMPLE_GROUPS, ranker_on_spark
from personify.jobs.training import (
    DEFAULT_FACTOR_PARAMS,
    TrainingConfig,
    explain_exclusions,
    fit_bundle,
)
from personify.privacy.model_influence import InfluenceIndex, save_influence, version_dir
from personify.privacy.training import TrainingPrivacy
from personify.serving.bundle import ModelBundle, default_source_weights
from personify.serving.factors import FactorModel
from personify.serving.user_lists import UserLists
from personify.storage.model_files import FileModelStore, ModelManifest, new_version
from personify.storage.ports import CatalogStore, UserStore

DISTRIBUTED_NEIGHBOURS = frozenset({"rp3beta"})
CHUNK_PAIRS = 4_000_000
"""At most this many (person, item, item) products per sparse product inside a partition."""
LIST_CHUNK = 2048
BLEND_SAMPLE_USERS = 20_000
BSPM_BYTES_PER_ITEM = 576 * 4 * 4
"""BSPM's dense low-pass filter: ``factor_dim`` (576) float32 per item, about four copies at the
peak of its truncated SVD."""


@dataclass
class SparkRun:
    """Where and how: the Spark session, the events path, partitions."""

    spark: Any
    events: str
    partitions: int | None = None
    custom_event_types: Sequence[str] = ()
    blend_sample_users: int = BLEND_SAMPLE_USERS
    ranker_sample_groups: int = SAMPLE_GROUPS
    memory_bytes: int | None = None
    """The driver machine's memory, for the single-machine limits in refusals (default: this
    machine's)."""


def _memory_bytes() -> int:
    try:
        import os

        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 16 << 30


def single_machine_items(model: str, memory_bytes: int) -> int:
    """The catalogue size at which ``model``'s dense single-machine step no longer fits
    ``memory_bytes`` (EASE: its dense Gram matrix and inverse; BSPM: its low-pass filter)."""
    if model == "ease":
        lo, hi = 1, 10**7
        while lo < hi:  # the largest catalogue whose peak fits
            mid = (lo + hi + 1) // 2
            if ease_memory_bytes(mid) <= memory_bytes:
                lo = mid
            else:
                hi = mid - 1
        return lo
    return int(memory_bytes // BSPM_BYTES_PER_ITEM)


def check_config(config: TrainingConfig, memory_bytes: int) -> None:
    """Refuse what the Spark trainer does not distribute, with the single-machine limit."""
    if config.model not in DISTRIBUTED_NEIGHBOURS:
        raise InvalidInput(
            f"the Spark trainer computes RP3beta neighbours, not {config.model!r}",
            field="model", accepted="rp3beta (or --engine local for other neighbour models)",
        )
    user = config.user_model
    if user is None or (user == config.model and config.user_params in ({}, config.params)):
        return
    limit = single_machine_items(user, memory_bytes)
    raise InvalidInput(
        f"the user model {user!r} is not distributed: it needs a dense "
        f"{'items x items matrix' if user == 'ease' else 'items x factors filter'} on one "
        f"machine, which stops at about {limit:,} items with this machine's "
        f"{memory_bytes / 2**30:.0f} GiB", field="user_model",
        accepted="--user-model rp3beta or none with --engine spark; train "
        f"{user} with --engine local while the catalogue is below {limit:,} items",
    )


def _arrow(frame: Any) -> Any:
    """A DataFrame gathered to the driver as one Arrow table."""
    return frame.toArrow()


def _np(table: Any, column: str, dtype: Any) -> NDArray[Any]:
    return np.asarray(table.column(column).to_numpy(zero_copy_only=False), dtype=dtype)


# -- RP3beta ---------------------------------------------------------------------------------


def rp3beta_neighbours(
    spark: Any, x: Any, n_items: int, *, k: int, alpha: float, beta: float, partitions: int
) -> sp.csr_matrix:
    """``W[i, j] = deg_i^-alpha * sum_{u in U(i) & U(j)} deg_u^-alpha * deg_j^-beta`` (i != j),
    the top ``k`` per row: ``personify.algorithms.rp3beta.RP3beta`` on the binarised positive
    pairs ``x`` (columns ``u``, ``i``), as a shuffle of per-partition sparse products."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    degree = _arrow(x.groupBy("i").count())
    deg_i = np.zeros(n_items, dtype=np.float64)
    deg_i[_np(degree, "i", np.int64)] = _np(degree, "count", np.float64)
    left = np.divide(1.0, deg_i ** alpha, out=np.zeros_like(deg_i), where=deg_i > 0)
    right = np.divide(1.0, deg_i ** beta, out=np.zeros_like(deg_i), where=deg_i > 0)
    scale = spark.sparkContext.broadcast((left, right))

    def products(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        tables = list(batches)
        if not tables:
            return
        table = pa.Table.from_batches(tables)
        users = np.asarray(table.column("u").to_numpy(), dtype=np.int64)
        items = np.asarray(table.column("i").to_numpy(), dtype=np.int64)
        order = np.argsort(users, kind="stable")
        users, items = users[order], items[order]
        local, starts, counts = np.unique(users, return_index=True, return_counts=True)
        weight = counts.astype(np.float64) ** -alpha
        lscale, rscale = scale.value
        cost = np.cumsum(counts.astype(np.int64) ** 2)
        first = 0
        while first < local.size:
            budget = (cost[first - 1] if first else 0) + CHUNK_PAIRS
            last = max(first + 1, int(np.searchsorted(cost, budget, side="right")))
            lo, hi = starts[first], starts[last - 1] + counts[last - 1]
            rows = np.repeat(np.arange(last - first), counts[first:last])
            m = sp.csr_matrix((np.ones(hi - lo), (rows, items[lo:hi])),
                              shape=(last - first, n_items))
            c = sp.coo_matrix(m.T @ sp.diags(weight[first:last]) @ m)
            keep = c.row != c.col
            i, j, v = c.row[keep], c.col[keep], c.data[keep]
            yield pa.RecordBatch.from_arrays(
                [pa.array(i.astype(np.int32)), pa.array(j.astype(np.int32)),
                 pa.array(v * lscale[i] * rscale[j])], names=["i", "j", "w"])
            first = last

    summed = (
        x.repartition(partitions, "u")
        .mapInArrow(products, "i int, j int, w double")
        .groupBy("i", "j").agg(F.sum("w").alias("w"))
    )
    rank = F.row_number().over(Window.partitionBy("i").orderBy(F.desc("w"), F.asc("j")))
    top = _arrow(summed.where(F.col("w") > 0).withColumn("r", rank).where(F.col("r") <= k)
                 .select("i", "j", "w"))
    return sp.csr_matrix(
        (_np(top, "w", np.float32), (_np(top, "i", np.int64), _np(top, "j", np.int64))),
        shape=(n_items, n_items), dtype=np.float32,
    )


# -- per-person lists ------------------------------------------------------------------------


def score_lists(
    spark: Any, x: Any, neighbours: sp.csr_matrix, users: Vocabulary, *, k: int,
    partitions: int, model_name: str, trained_through: float,
) -> UserLists:
    """Each listed person's top ``k`` of ``history @ W`` (history excluded, positive scores),
    with the anchor item of each (``personify.jobs.user_lists.build_user_lists`` for an
    item-item user model), scored in the partitions of ``x`` with ``W`` broadcast."""
    from pyspark.sql import functions as F

    shape = neighbours.shape
    model = spark.sparkContext.broadcast(
        (neighbours.indptr, neighbours.indices, neighbours.data, shape))

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        tables = list(batches)
        if not tables:
            return
        indptr, indices, data, n = model.value
        w = sp.csr_matrix((data, indices, indptr), shape=n)
        table = pa.Table.from_batches(tables)
        u_all = np.asarray(table.column("u").to_numpy(), dtype=np.int64)
        i_all = np.asarray(table.column("i").to_numpy(), dtype=np.int64)
        people, inverse = np.unique(u_all, return_inverse=True)
        history = sp.csr_matrix((np.ones(u_all.size, np.float32), (inverse, i_all)),
                                shape=(people.size, n[1]))
        history.sum_duplicates()
        history.data[:] = 1.0
        for start in range(0, people.size, LIST_CHUNK):
            block = history[start:start + LIST_CHUNK]
            scores = sp.csr_matrix(block @ w)
            out_u, out_r, out_i, out_s, out_a = [], [], [], [], []
            for row in range(block.shape[0]):
                owned = block.indices[block.indptr[row]:block.indptr[row + 1]]
                lo, hi = scores.indptr[row], scores.indptr[row + 1]
                cand, vals = scores.indices[lo:hi], scores.data[lo:hi]
                ok = (vals > 0) & ~np.isin(cand, owned)
                cand, vals = cand[ok], vals[ok]
                if cand.size == 0:
                    continue
                order = np.lexsort((cand, -vals))[:k]
                top, top_s = cand[order], vals[order]
                sub = w[owned][:, top].toarray()
                best = np.argmax(sub, axis=0)
                anchors = owned[best].astype(np.int32)
                anchors[sub[best, np.arange(top.size)] <= 0] = -1
                out_u.append(np.full(top.size, people[start + row], np.int64))
                out_r.append(np.arange(top.size, dtype=np.int32))
                out_i.append(top.astype(np.int32))
                out_s.append(top_s.astype(np.float32))
                out_a.append(anchors)
            if out_u:
                yield pa.RecordBatch.from_arrays(
                    [pa.array(np.concatenate(a)) for a in (out_u, out_r, out_i, out_s, out_a)],
                    names=["u", "r", "i", "s", "a"])

    rows = _arrow(
        x.repartition(partitions, "u")
        .mapInArrow(score, "u long, r int, i int, s float, a int")
        .orderBy(F.asc("u"), F.asc("r"))
    )
    u = _np(rows, "u", np.int64)
    counts = np.bincount(u, minlength=len(users))
    indptr = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return UserLists(model_name, users, indptr, _np(rows, "i", np.int32),
                     _np(rows, "s", np.float32), _np(rows, "a", np.int32), trained_through)


# -- implicit ALS ----------------------------------------------------------------------------


def als_factors(
    positive: Any, n_items: int, *, factors: int, params: Mapping[str, Any], seed: int = 0
) -> tuple[NDArray[np.float32], float]:
    """Item factors of Spark MLlib's implicit ALS on the positive pairs (``u``, ``i``, ``w``):
    confidence ``1 + alpha * w`` as ``implicit`` (binary: ``w = 1``). MLlib scales the
    regularization by each row's number of ratings; the ``implicit`` value is divided by the
    mean number per person so an average person is regularized alike. Returns the factors
    (items without positive pairs: zeros) and the MLlib regParam used."""
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    stats = positive.agg(F.count("*").alias("n"), F.countDistinct("u").alias("people")).first()
    per_person = max(1.0, float(stats["n"]) / max(1, int(stats["people"])))
    reg = float(params["regularization"]) / per_person
    rating = F.lit(1.0) if params.get("binary") else F.col("w")
    data = positive.select("u", "i", rating.cast("float").alias("w"))
    model = ALS(
        rank=factors, maxIter=int(params["iterations"]), regParam=reg,
        alpha=float(params["alpha"]), implicitPrefs=True, userCol="u", itemCol="i",
        ratingCol="w", seed=seed, coldStartStrategy="drop",
    ).fit(data)
    table = _arrow(model.itemFactors)
    out = np.zeros((n_items, factors), dtype=np.float32)
    ids = _np(table, "id", np.int64)
    if ids.size:
        out[ids] = np.asarray(table.column("features").to_pylist(), dtype=np.float32)
    return out, reg


# -- the run ---------------------------------------------------------------------------------


@dataclass
class SparkTraining:
    """What one Spark training produced (also what the tests compare)."""

    bundle: ModelBundle
    manifest: ModelManifest
    influence: InfluenceIndex | None


def train_on_spark(
    run: SparkRun,
    tenant: str,
    config: TrainingConfig | None = None,
    *,
    privacy: TrainingPrivacy | None = None,
    labels: Mapping[str, Sequence[str]] | None = None,
    version: str | None = None,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    catalog: CatalogStore | None = None,
    users: UserStore | None = None,
) -> SparkTraining:
    """Train the bundle from ``run.events`` (see the module docstring); saves nothing. The
    ranker is trained, as in process, when ``config.train_ranker`` and the catalogue and the
    people (for its item and context features) are given."""
    config = config or TrainingConfig()
    memory = run.memory_bytes or _memory_bytes()
    check_config(config, memory)
    from pyspark.sql import functions as F

    spark = run.spark
    started_at = now or datetime.now(UTC)
    clock = time.perf_counter()
    stages: dict[str, float] = {}

    def stage(name: str) -> None:
        nonlocal clock
        stages[name] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()
        if progress is not None:
            progress(name)

    partitions = run.partitions or max(2, spark.sparkContext.defaultParallelism)
    gated = read_events(spark, run.events, tenant=tenant, privacy=privacy, weights=config.weights,
                        now=started_at, custom_types=run.custom_event_types)
    events = gated.frame.cache()
    summary = events.agg(F.count("*").alias("n"), F.max("ts").alias("t_max")).first()
    used = int(summary["n"])
    if used < max(1, config.min_events):
        why = explain_exclusions(gated.excluded)
        raise InvalidInput(
            f"not enough events to train: {used} usable item events"
            + (f"; {why}" if why else ""), field="events",
            accepted=f"at least {max(1, config.min_events)} item events",
        )
    t_max = float(summary["t_max"])
    decay = F.exp(F.lit(-math.log(2)) * ((F.lit(t_max) - F.col("ts")) / 86_400.0)
                  / F.lit(config.popularity_half_life_days))
    pairs = events.groupBy("subject", "item_id").agg(
        F.sum("weight").alias("w"),
        F.sum(F.greatest(F.col("weight"), F.lit(0.0)) * decay).alias("pop"),
        F.max("ts").alias("last"),
    )
    item_ids = [r[0] for r in pairs.select("item_id").distinct().orderBy("item_id").collect()]
    user_ids = [r[0] for r in pairs.select("subject").distinct().orderBy("subject").collect()]
    items, people = Vocabulary(item_ids), Vocabulary(user_ids)
    item_frame = spark.createDataFrame(list(enumerate(item_ids)), "i int, item_id string")
    user_frame = spark.createDataFrame(list(enumerate(user_ids)), "u long, subject string")
    indexed = (pairs.join(F.broadcast(item_frame), "item_id").join(user_frame, "subject")
               .select("u", "i", "w", "pop", "last").cache())
    indexed.count()
    stage("read, gate and aggregate")

    popular = _arrow(indexed.groupBy("i").agg(F.sum("pop").alias("pop")))
    popularity = np.zeros(len(items), dtype=np.float64)
    popularity[_np(popular, "i", np.int64)] = _np(popular, "pop", np.float64)
    positive = indexed.where(F.col("w") > 0).select("u", "i", "w").cache()
    stage("popularity")
    params = {"k": 200, "alpha": 0.8, "beta": 0.3, **config.params}
    neighbours = rp3beta_neighbours(
        spark, positive.select("u", "i"), len(items), k=int(params["k"]),
        alpha=float(params["alpha"]), beta=float(params["beta"]), partitions=partitions,
    )
    stage("rp3beta neighbours")
    version = version or new_version()
    factors = None
    if config.factors:
        factor_params = {**DEFAULT_FACTOR_PARAMS, **config.factor_params}
        item_factors, reg = als_factors(positive, len(items), factors=config.factors,
                                        params=factor_params)
        weights = dict(config.weights.weights)
        weights.setdefault("rating", config.weights.rating_scale)
        factors = FactorModel.build(
            version, item_factors, regularization=float(factor_params["regularization"]),
            alpha=float(factor_params["alpha"]), event_weights=weights,
            binary=bool(factor_params.get("binary", False)),
            params={**factor_params, "engine": "spark-mllib", "mllib_reg_param": reg,
                    "fit_seconds": round(time.perf_counter() - clock, 3)},
        )
        stage("als factors")
    lists = None
    if config.user_model is not None and config.list_length > 0:
        listed = positive.select("u", "i")
        if config.list_users < len(people):
            recent = (indexed.where(F.col("w") > 0).groupBy("u").agg(F.max("last").alias("t"))
                      .orderBy(F.desc("t"), F.asc("u")).limit(config.list_users))
            listed = listed.join(recent.select("u"), "u")
        lists = score_lists(spark, listed, neighbours, people, k=config.list_length,
                            partitions=partitions, model_name=config.model,
                            trained_through=t_max)
        stage("per-person lists")
    parts = source_parts_on_spark(events, items, item_frame)
    stage("source parts (time of day, baskets, visits)")
    bundle = ModelBundle(
        version=version, items=items, neighbours=neighbours,
        popularity=popularity.astype(np.float32), model_name=config.model, params=params,
        source_weights=default_source_weights(), factors=factors, user_lists=lists, parts=parts,
    )
    influence = None
    if privacy is not None:
        influence = influence_index(indexed, people, items, privacy, tenant, t_max,
                                    config.popularity_half_life_days)
        stage("influence index")
    blend_metrics: dict[str, Any] = {}
    if config.learn_blend:
        blend_metrics = learn_blend_on_sample(indexed, people, items, config, labels,
                                              run.blend_sample_users)
        bundle.source_weights.update(blend_metrics.get("blend_weights", {}))
        stage("blend (in-process, sample)")
    ranker_metrics: dict[str, Any] = {}
    if config.train_ranker and catalog is not None and users is not None:
        fit = ranker_on_spark(
            spark, spark.read.parquet(run.events), gated, catalog=catalog, users=users,
            tenant=tenant,
            popularity=dict(zip(items.ids, bundle.popularity.tolist(), strict=True)),
            weights=bundle.source_weights, partitions=partitions,
            min_groups=config.ranker_min_groups, sample_groups=run.ranker_sample_groups,
        )
        bundle.ranker = fit.ranker
        ranker_metrics = {"ranker": fit.metrics}
        stage("ranker (features on Spark, LightGBM on the driver)")
    manifest = ModelManifest(
        version=version, tenant=tenant, created_at=datetime.now(UTC).isoformat(),
        params={"model": config.model, **params}, events_used=used,
        fit_seconds=round(sum(stages.values()), 3),
        metrics={"users": len(people), "items": len(items), "engine": "spark",
                 "spark_master": spark.sparkContext.master, "spark_stages": stages,
                 "events_read": gated.rows_read, **blend_metrics, **ranker_metrics},
    )
    manifest.data_as_of = started_at.isoformat()
    if gated.excluded:
        manifest.metrics["excluded_events"] = dict(gated.excluded)
    if lists is not None:
        manifest.params["user_model"] = {"model": config.user_model, **params,
                                         "list_length": config.list_length}
        manifest.metrics["listed_users"] = int(np.count_nonzero(np.diff(lists.indptr)))
        manifest.metrics["user_lists_mb"] = round(lists.nbytes / 2**20, 1)
    if factors is not None:
        manifest.params["factors"] = {"k": factors.dimensions, **factors.params}
        manifest.metrics["factors_fit_seconds"] = stages.get("als factors")
    events.unpersist()
    indexed.unpersist()
    positive.unpersist()
    return SparkTraining(bundle, manifest, influence)


def influence_index(
    indexed: Any, users: Vocabulary, items: Vocabulary, privacy: TrainingPrivacy, tenant: str,
    t_max: float, half_life_days: float,
) -> InfluenceIndex:
    """``personify.privacy.model_influence.influence_of`` from the aggregated pairs: binarised
    positive pairs, the decayed popularity each person added, their newest event."""
    table = _arrow(indexed)
    u, i = _np(table, "u", np.int64), _np(table, "i", np.int64)
    w, pop = _np(table, "w", np.float64), _np(table, "pop", np.float64)
    last = _np(table, "last", np.float64)
    shape = (len(users), len(items))
    pos = w > 0
    x = sp.csr_matrix((np.ones(int(pos.sum()), np.float32), (u[pos], i[pos])), shape=shape,
                      dtype=np.float32)
    popm = sp.csr_matrix((pop, (u, i)), shape=shape, dtype=np.float64)
    popm.eliminate_zeros()
    row_last = np.full(len(users), -np.inf)
    np.maximum.at(row_last, u, last)
    key, scheme = privacy._key(tenant)
    return InfluenceIndex([key(s) for s in users.ids], x, popm, row_last, t_max, half_life_days,
                          scheme)


def learn_blend_on_sample(
    indexed: Any, users: Vocabulary, items: Vocabulary, config: TrainingConfig,
    labels: Mapping[str, Sequence[str]] | None, sample_users: int,
) -> dict[str, Any]:
    """The in-process blend learner (``learn_source_weights`` with the in-process
    ``fit_bundle``) on at most ``sample_users`` people's person x item rows (one row per pair,
    at its newest time): the weights are relative, so a sample estimates them."""
    from pyspark.sql import functions as F

    frame = indexed
    if len(users) > sample_users:
        rng = np.random.default_rng(0)
        chosen = np.sort(rng.choice(len(users), size=sample_users, replace=False))
        spark = indexed.sparkSession
        frame = indexed.join(F.broadcast(spark.createDataFrame(
            [(int(c),) for c in chosen], "u long")), "u")
    table = _arrow(frame.select("u", "i", "w", "last"))
    u, i = _np(table, "u", np.int64), _np(table, "i", np.int64)
    order = np.lexsort((i, u))
    data = Interactions.from_arrays(
        users.lookup(u[order]), items.lookup(i[order]), _np(table, "w", np.float32)[order],
        _np(table, "last", np.float64)[order], items=items,
    )
    local = replace(config, learn_blend=False)
    fitted = learn_source_weights(
        data,
        lambda reduced, people, keep: fit_bundle(reduced, local, "validation",
                                                 list_users=people),
        labels=labels, max_users=config.blend_users, selection=config.blend_selection,
    )
    return {"blend_weights": fitted.weights, "blend_users": fitted.users,
            "blend_holdout": fitted.protocol, "blend_hit_rate@20": fitted.hit_rate,
            "blend_sample_people": data.n_users}


def train_tenant_spark(
    run: SparkRun,
    models: FileModelStore,
    tenant: str,
    config: TrainingConfig | None = None,
    *,
    privacy: TrainingPrivacy | None = None,
    labels: Mapping[str, Sequence[str]] | None = None,
    promote: bool = True,
    progress: Callable[[str], None] | None = None,
    catalog: CatalogStore | None = None,
    users: UserStore | None = None,
) -> ModelManifest:
    """Train on Spark, then save the version (and its influence index) and promote it, as
    ``personify.jobs.training.train_tenant`` does. Any failure before the save promotes
    nothing."""
    result = train_on_spark(run, tenant, config, privacy=privacy, labels=labels,
                            progress=progress, catalog=catalog, users=users)
    manifest = result.manifest
    models.save(tenant, result.bundle, manifest)
    if result.influence is not None:
        save_influence(version_dir(models, tenant, manifest.version), result.influence)
    if promote:
        served = models.promote(tenant, manifest.version)
        manifest.promoted = served == manifest.version
        if not manifest.promoted:
            manifest.metrics["promoted_as"] = served
    return manifest


__all__ = [
    "SparkRun", "SparkTraining", "als_factors", "check_config", "rp3beta_neighbours",
    "score_lists", "single_machine_items", "train_on_spark", "train_tenant_spark",
]
