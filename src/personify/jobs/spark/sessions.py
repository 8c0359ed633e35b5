"""The ``session_knn`` part (V-SKNN over past visits) from the gated events on Spark: the same
visits and the same past sessions as ``personify.serving.session_knn.train_session_knn``.

The executors cut every person's events into visits (a window per person ordered by time: a
new visit after ``SESSION_GAP_S`` without activity), find each visit's start and keep the newest
``MAX_SESSIONS`` (a distributed top-k by start, then person id); only those visits' distinct
items reach the driver, which fits the model the server reads (``session_part``: the session x
item matrix, at most ``MAX_SESSIONS`` rows, as in process).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.serving.session_knn import (
    MAX_SESSIONS,
    SESSION_GAP_S,
    SessionNeighbours,
    session_part,
)


def session_knn_part(events: Any, items: Vocabulary, item_frame: Any,
                     max_sessions: int = MAX_SESSIONS) -> SessionNeighbours | None:
    """V-SKNN over the newest ``max_sessions`` visits of ``events`` (``subject``, ``item_id``,
    ``ts``); None with too few visits."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_person = Window.partitionBy("subject").orderBy("ts")
    gap = F.col("ts") - F.lag("ts").over(by_person)
    marked = (
        events.join(F.broadcast(item_frame), "item_id").select("subject", "i", "ts")
        .withColumn("new", F.when(gap.isNull() | (gap > F.lit(float(SESSION_GAP_S))), 1)
                    .otherwise(0))
        .withColumn("visit", F.sum("new").over(
            by_person.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
        .cache()
    )
    try:
        newest = (
            marked.groupBy("subject", "visit").agg(F.min("ts").alias("start"))
            .orderBy(F.desc("start"), F.desc("subject")).limit(max_sessions)
        )
        # oldest first, as in process (one partition: at most max_sessions rows)
        ranked = newest.withColumn(
            "r", F.row_number().over(Window.orderBy("start", "subject")) - F.lit(1))
        table = (marked.join(ranked, ["subject", "visit"]).select("r", "i").distinct()
                 .toArrow())
    finally:
        marked.unpersist()
    if table.num_rows == 0:
        return None
    r = np.asarray(table.column("r").to_numpy(), dtype=np.int64)
    i = np.asarray(table.column("i").to_numpy(), dtype=np.int64)
    order = np.lexsort((i, r))
    sessions = Vocabulary([f"s{v}" for v in range(int(r.max()) + 1)])  # each has an item
    data = Interactions.from_arrays(sessions.lookup(r[order]), items.lookup(i[order]),
                                    users=sessions, items=items)
    return session_part(data)


__all__ = ["session_knn_part"]
