"""The trained parts of the registered sources, computed on Spark: ``time_of_day`` (decayed
popularity per hour of the day), ``bought_together`` (basket association rules) and
``buy_again`` (each item's repeat propensity), and ``session_knn`` (past visits,
``jobs.spark.sessions``) — the same parts as the in-process trainers of
``personify.serving.context_sources``, ``personify.serving.basket_sources`` and
``personify.serving.session_knn``, from the gated events DataFrame.

Aggregations run on the executors; the driver receives at most 24 rows per item (hours), one
row per item (purchase counts) and the best ``RULES_PER_ITEM`` rules per item. A basket is one
person's purchases at one timestamp (an order), as ``personify.algorithms.basket.basket_ids``
with no gap. Parts a source cannot have from these events (no purchases, no co-purchases, a
span shorter than two days) are absent, as in process.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from personify.algorithms.basket import repeat_propensity, rule_scores
from personify.data.vocabulary import Vocabulary
from personify.jobs.spark.sessions import session_knn_part
from personify.serving.basket_sources import (
    BUY_AGAIN_HALF_LIFE_DAYS,
    BasketRules,
    RepeatPropensity,
)
from personify.serving.context_sources import (
    HALF_LIFE_DAYS,
    MIN_SPAN_DAYS,
    HourlyPopularity,
    hourly_popularity,
)

RULES_PER_ITEM = 100
"""``bought_together`` keeps each item's best rules, as the in-process part (cosine, 100)."""
MIN_SUPPORT = 2
SHRINK = 10.0
PROPENSITY_PRIOR = 2.0


def _arrow(frame: Any) -> Any:
    return frame.toArrow()


def _np(table: Any, column: str, dtype: Any) -> np.ndarray:
    return np.asarray(table.column(column).to_numpy(zero_copy_only=False), dtype=dtype)


def time_of_day_part(events: Any, items: Vocabulary, item_frame: Any) -> HourlyPopularity | None:
    """``train_time_of_day`` on Spark: the weight (clipped at 0) decayed from the newest event
    with a 30-day half-life, summed per UTC hour and item; smoothed on the driver."""
    from pyspark.sql import functions as F

    span = events.agg(F.min("ts").alias("lo"), F.max("ts").alias("hi")).first()
    if span is None or span["hi"] is None:
        return None
    lo, hi = float(span["lo"]), float(span["hi"])
    if hi - lo < MIN_SPAN_DAYS * 86_400:
        return None
    decay = F.exp(F.lit(-math.log(2)) * (F.lit(hi) - F.col("ts")) / F.lit(86_400.0)
                  / F.lit(HALF_LIFE_DAYS))
    hour = F.pmod(F.floor(F.col("ts") / F.lit(3600.0)), F.lit(24)).cast("int")
    table = _arrow(
        events.join(F.broadcast(item_frame), "item_id")
        .groupBy(hour.alias("h"), "i")
        .agg(F.sum(F.greatest(F.col("weight"), F.lit(0.0)) * decay).alias("w"))
    )
    raw = np.zeros((24, len(items)), dtype=np.float64)
    np.add.at(raw, (_np(table, "h", np.int64), _np(table, "i", np.int64)),
              _np(table, "w", np.float64))
    return hourly_popularity(items, raw)


def basket_items(events: Any, item_frame: Any) -> Any:
    """One row per (basket, item) of the positive purchases: ``subject``, ``ts``, ``i``."""
    from pyspark.sql import functions as F

    return (events.where(F.col("purchase") & (F.col("weight") > 0))
            .join(F.broadcast(item_frame), "item_id")
            .select("subject", "ts", "i").distinct())


def buy_again_part(baskets: Any, items: Vocabulary) -> RepeatPropensity | None:
    """Per item, its buyers and the buyers who bought it in two or more baskets."""
    from pyspark.sql import functions as F

    per_buyer = baskets.groupBy("subject", "i").agg(F.count("*").alias("n"))
    table = _arrow(per_buyer.groupBy("i").agg(
        F.count("*").alias("buyers"),
        F.sum((F.col("n") > 1).cast("long")).alias("repeaters"),
    ))
    if table.num_rows == 0:
        return None
    buyers = np.zeros(len(items), dtype=np.int64)
    repeaters = np.zeros(len(items), dtype=np.int64)
    ids = _np(table, "i", np.int64)
    buyers[ids] = _np(table, "buyers", np.int64)
    repeaters[ids] = _np(table, "repeaters", np.int64)
    return RepeatPropensity(items, repeat_propensity(buyers, repeaters, PROPENSITY_PRIOR),
                            BUY_AGAIN_HALF_LIFE_DAYS)


def bought_together_part(baskets: Any, items: Vocabulary) -> BasketRules | None:
    """Co-purchase counts by a self-join on the basket, kept from ``MIN_SUPPORT`` shared
    baskets, scored by cosine (shrunk), the best ``RULES_PER_ITEM`` per item (ranked by a
    window on the executors; the driver recomputes the kept scores in float32 as in process)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    n_baskets = baskets.select("subject", "ts").distinct().count()
    support = baskets.groupBy("i").agg(F.count("*").alias("n")).cache()
    a, b = baskets.alias("a"), baskets.alias("b")
    pairs = (
        a.join(b, (F.col("a.subject") == F.col("b.subject")) & (F.col("a.ts") == F.col("b.ts"))
               & (F.col("a.i") != F.col("b.i")))
        .groupBy(F.col("a.i").alias("i"), F.col("b.i").alias("j")).agg(F.count("*").alias("c"))
        .where(F.col("c") >= MIN_SUPPORT)
        .join(F.broadcast(support.select("i", F.col("n").alias("ni"))), "i")
        .join(F.broadcast(support.select(F.col("i").alias("j"), F.col("n").alias("nj"))), "j")
        .withColumn("s", F.col("c") / (F.sqrt(F.col("ni") * F.col("nj")) + F.lit(SHRINK)))
    )
    rank = F.row_number().over(Window.partitionBy("i").orderBy(F.desc("s"), F.asc("j")))
    table = _arrow(pairs.withColumn("r", rank).where(F.col("r") <= RULES_PER_ITEM)
                   .select("i", "j", "c"))
    sup = _arrow(support)
    support.unpersist()
    if table.num_rows == 0:
        return None
    n_item = np.zeros(len(items), dtype=np.float32)
    n_item[_np(sup, "i", np.int64)] = _np(sup, "n", np.float32)
    i, j, c = _np(table, "i", np.int64), _np(table, "j", np.int64), _np(table, "c", np.float32)
    scores = rule_scores(c, n_item[i], n_item[j], n_baskets, metric="cosine", shrink=SHRINK)
    rules = sp.csr_matrix((scores, (i, j)), shape=(len(items), len(items)), dtype=np.float32)
    return BasketRules(items, rules, int(n_baskets))


def source_parts_on_spark(events: Any, items: Vocabulary, item_frame: Any) -> dict[str, Any]:
    """Every part the Spark trainer computes, by source name (absent when the data gives none)."""
    parts: dict[str, Any] = {}
    hourly = time_of_day_part(events, items, item_frame)
    if hourly is not None:
        parts["time_of_day"] = hourly
    baskets = basket_items(events, item_frame).cache()
    try:
        together = bought_together_part(baskets, items)
        if together is not None:
            parts["bought_together"] = together
        again = buy_again_part(baskets, items)
        if again is not None:
            parts["buy_again"] = again
    finally:
        baskets.unpersist()
    knn = session_knn_part(events, items, item_frame)
    if knn is not None:
        parts["session_knn"] = knn
    return parts


__all__ = ["bought_together_part", "buy_again_part", "source_parts_on_spark",
           "time_of_day_part"]
