"""The LambdaRank ranker trained from the Parquet events on Spark: the same query groups, features
and fit as ``personify.jobs.ranker_training`` (what ``personify train`` runs in process).

What runs where:

* **Spark**: reading the impressions and their attributed feedback (the privacy gate and the
  retention rule of the bundle's own read, ``GatedEvents.gate``), the label per recommendation
  and item (the strongest feedback), the join that keeps impressions with feedback, the newest
  ``sample_groups`` of them, and the features of every group in partitions
  (``impression_group``, the code the server runs) with the items, people and popularity they
  need broadcast.
* **the driver**: the catalogue and people lookups of those groups' items and people, then
  LightGBM's LambdaRank on the groups (``train_ranker``: older groups fit, the newest validate,
  kept only when it beats the blend). LightGBM itself is not distributed: at most
  ``sample_groups`` groups (the newest) reach it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from personify.jobs.bulk_export import flat_columns
from personify.jobs.column_mapping import ColumnMapping
from personify.jobs.ranker_training import (
    LABELS,
    RankerFit,
    RankingData,
    assemble,
    impression_group,
    train_ranker,
)
from personify.jobs.spark.input import GatedEvents
from personify.storage.ports import CatalogStore, UserStore

SAMPLE_GROUPS = 200_000
"""At most this many impressions with feedback (the newest) are ranked by the driver's fit."""
DOT = "__"
NEEDED = ("type", "user_id", "anonymous_id", "timestamp", "recommendation_id")


def _event_fields(columns: list[str]) -> list[str]:
    """The columns of the events export that are event fields (not e.g. a ``date=`` folder)."""
    fields = flat_columns("events")
    return [c for c in columns if c in fields]


def labelled_impressions(raw: Any, gated: GatedEvents, sample_groups: int) -> Any | None:
    """One row per impression with feedback (its newest copy per recommendation id): the
    impression's event columns, ``ts`` and ``got`` (item id -> strongest label); the newest
    ``sample_groups``. None when the events have no impressions."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if any(c not in raw.columns for c in (*NEEDED, "item_ids", "item_id")):
        return None
    kinds = ["impression", *LABELS]
    events = gated.gate(raw.where(F.col("recommendation_id").isNotNull()
                                  & F.col("type").isin(kinds)))
    label: Any = None
    for kind, value in LABELS.items():
        cond = F.col("type") == kind
        label = F.when(cond, value) if label is None else label.when(cond, value)
    got = (
        events.where((F.col("type") != "impression") & F.col("item_id").isNotNull())
        .groupBy("recommendation_id", "item_id").agg(F.max(label).alias("label"))
        .groupBy("recommendation_id")
        .agg(F.map_from_entries(F.collect_list(F.struct("item_id", "label"))).alias("got"))
    )
    newest_copy = Window.partitionBy("recommendation_id").orderBy(F.desc("ts"))
    # nested fields (``context.device``) renamed without the dot Spark reads as a path
    fields = [F.col(f"`{c}`").alias(c.replace(".", DOT)) for c in _event_fields(raw.columns)]
    impressions = (
        events.where((F.col("type") == "impression") & (F.size("item_ids") > 0))
        .withColumn("_copy", F.row_number().over(newest_copy)).where(F.col("_copy") == 1)
        .select(*fields, "ts")
    )
    return (impressions.join(got, "recommendation_id")
            .orderBy(F.desc("ts"), F.desc("recommendation_id")).limit(sample_groups))


def ranking_data_on_spark(
    spark: Any,
    groups: Any,
    *,
    catalog: CatalogStore,
    users: UserStore,
    tenant: str,
    popularity: Mapping[str, float],
    weights: Mapping[str, float],
    partitions: int,
) -> RankingData:
    """The features of ``groups`` (``labelled_impressions``) computed in partitions; the
    groups oldest first (by time, then recommendation id), as ``ranking_data`` orders them."""
    from pyspark.sql import functions as F

    groups = groups.cache()
    item_ids = [r[0] for r in groups.select(F.explode("item_ids")).distinct().collect()]
    people = [r[0] for r in groups.where(F.col("user_id").isNotNull())
              .select("user_id").distinct().collect()]
    known = {u: p for u in people if (p := users.get(tenant, u)) is not None}
    shared = spark.sparkContext.broadcast((
        catalog.get_many(tenant, item_ids) if item_ids else {},
        known,
        {i: float(popularity[i]) for i in item_ids if i in popularity},
        dict(weights),
    ))
    columns = [c for c in groups.columns if c not in ("ts", "got")]

    def features(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        from personify.domain.events import Event

        items, profiles, pop, blend_weights = shared.value
        mapping = ColumnMapping("events")
        for batch in batches:
            out: dict[str, list[Any]] = {k: [] for k in ("ts", "rec", "pos", "y", "b", "f")}
            for row in batch.to_pylist():
                got = dict(row.pop("got") or {})
                ts = row.pop("ts")
                raw = {c.replace(DOT, "."): row.get(c) for c in columns}
                imp = Event.model_validate(mapping.apply(raw))
                block, y, blend = impression_group(
                    imp, got, items, users=profiles.get, popularity=pop, weights=blend_weights)
                out["ts"].extend([ts] * len(y))
                out["rec"].extend([imp.recommendation_id] * len(y))
                out["pos"].extend(range(len(y)))
                out["y"].extend(y)
                out["b"].extend(blend)
                out["f"].extend(block.tolist())
            if out["y"]:
                yield pa.RecordBatch.from_pydict(out, schema=pa.schema([
                    ("ts", pa.float64()), ("rec", pa.string()), ("pos", pa.int32()),
                    ("y", pa.int32()), ("b", pa.float32()), ("f", pa.list_(pa.float32()))]))

    rows = (
        groups.repartition(partitions)
        .mapInArrow(features, "ts double, rec string, pos int, y int, b float, f array<float>")
        .orderBy("ts", "rec", "pos").toArrow()
    )
    groups.unpersist()
    ts = np.asarray(rows.column("ts").to_numpy(), dtype=np.float64)
    rec = rows.column("rec").to_pylist()
    starts = [n for n in range(len(rec)) if n == 0 or rec[n] != rec[n - 1] or ts[n] != ts[n - 1]]
    bounds = [*starts, len(rec)]
    feats = np.asarray(rows.column("f").to_pylist(), dtype=np.float32)
    y = np.asarray(rows.column("y").to_numpy(), dtype=np.int32)
    b = np.asarray(rows.column("b").to_numpy(), dtype=np.float32)
    cut = list(itertools.pairwise(bounds))
    return assemble([feats[lo:hi] for lo, hi in cut], [y[lo:hi].tolist() for lo, hi in cut],
                    [b[lo:hi].tolist() for lo, hi in cut], [float(ts[lo]) for lo, _ in cut])


def ranker_on_spark(
    spark: Any,
    raw: Any,
    gated: GatedEvents,
    *,
    catalog: CatalogStore,
    users: UserStore,
    tenant: str,
    popularity: Mapping[str, float],
    weights: Mapping[str, float],
    partitions: int,
    min_groups: int,
    sample_groups: int = SAMPLE_GROUPS,
) -> RankerFit:
    """The ranker from the impressions in ``raw`` (the events as read), or why there is none."""
    groups = labelled_impressions(raw, gated, sample_groups)
    if groups is None:
        return RankerFit(None, {"groups": 0, "skipped": "no impressions in the events"})
    data = ranking_data_on_spark(spark, groups, catalog=catalog, users=users, tenant=tenant,
                                 popularity=popularity, weights=weights, partitions=partitions)
    fit = train_ranker(data, min_groups=min_groups)
    fit.metrics["engine"] = "spark features, LightGBM on the driver"
    fit.metrics["sample_groups"] = sample_groups
    return fit


__all__ = ["SAMPLE_GROUPS", "labelled_impressions", "ranker_on_spark", "ranking_data_on_spark"]
