"""The Spark trainer's input: a Parquet export (``personify export events DIR --format parquet
--partition-by date``) or the same columns on any Hadoop-compatible path, checked before any
work (no files, unreadable files, missing columns, unknown event types: an error naming the file
and the row group), filtered by the privacy gate exactly as the in-process trainer filters
(``personify.privacy.training.TrainingPrivacy``), and turned into weighted interactions with the
same ``EventWeights``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from personify.data.events import EventWeights
from personify.domain.errors import InvalidInput
from personify.domain.events import BUILTIN_EVENT_TYPES
from personify.privacy.training import TrainingPrivacy

REQUIRED_COLUMNS = ("type", "user_id", "anonymous_id", "item_id", "timestamp")
OPTIONAL_COLUMNS = ("value", "quantity")


def _filesystem(path: str) -> tuple[Any, str] | None:
    """pyarrow's file system for ``path`` (None when pyarrow has no driver for its scheme: Spark
    alone then reads and reports)."""
    import pyarrow.fs as pafs

    try:
        if "://" not in path:
            return pafs.LocalFileSystem(), path
        fs, root = pafs.FileSystem.from_uri(path)
        return fs, root
    except Exception:
        return None


def parquet_files(path: str) -> list[str]:
    """The data files under ``path`` (a file or a folder, hidden and ``_`` files skipped), as
    pyarrow sees them; an error when there are none."""
    import pyarrow.fs as pafs

    found = _filesystem(path)
    if found is None:
        return []
    fs, root = found
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise InvalidInput(f"no events: {path} does not exist", field="events",
                           accepted="a Parquet file or folder (personify export events DIR "
                           "--format parquet --partition-by date)")
    if info.type == pafs.FileType.File:
        return [root]
    files = sorted(
        f.path for f in fs.get_file_info(pafs.FileSelector(root, recursive=True))
        if f.type == pafs.FileType.File
        and not any(part.startswith(("_", ".")) for part in f.path[len(root):].split("/") if part)
    )
    if not files:
        raise InvalidInput(f"no events: no Parquet files under {path}", field="events",
                           accepted="a folder written by personify export events DIR --format "
                           "parquet --partition-by date")
    return files


def check_files(path: str) -> None:
    """Every file's footer and schema: readable Parquet with the event columns."""
    import pyarrow.parquet as pq

    found = _filesystem(path)
    if found is None:
        return
    fs = found[0]
    files = parquet_files(path)
    for name in files:
        try:
            with fs.open_input_file(name) as fh:
                schema = pq.ParquetFile(fh).schema_arrow
        except Exception as exc:
            raise InvalidInput(
                f"{name}: not a readable Parquet file ({_first_line(exc)})", field="events",
                accepted="Parquet files with the columns of personify export events",
            ) from exc
        missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
        if missing:
            raise InvalidInput(
                f"{name}: missing column(s) {', '.join(missing)}", field="events",
                accepted="the columns of personify export events: " + ", ".join(REQUIRED_COLUMNS),
            )


def locate(path: str, columns: list[str], bad: Callable[[Any], Any]) -> tuple[str, int] | None:
    """The first (file, row group) under ``path`` where ``bad(table)`` (a boolean pyarrow array
    over the row group's ``columns``) holds, or which cannot be read at all."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    found = _filesystem(path)
    if found is None:
        return None
    fs = found[0]
    for name in parquet_files(path):
        with fs.open_input_file(name) as fh:
            try:
                reader = pq.ParquetFile(fh)
            except Exception:
                return name, 0
            for group in range(reader.num_row_groups):
                try:
                    table = reader.read_row_group(group, columns=columns)
                except Exception:
                    return name, group
                if pc.any(bad(table)).as_py():
                    return name, group
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:300]


def _unreadable(path: str, exc: BaseException) -> InvalidInput:
    """The error for a read that failed inside Spark, naming the file and row group."""
    where = locate(path, list(REQUIRED_COLUMNS), lambda t: _none(t))
    place = f"{where[0]}, row group {where[1]}" if where else path
    return InvalidInput(f"malformed Parquet in {place}: {_first_line(exc)}", field="events",
                        accepted="Parquet files written by personify export events")


def _none(table: Any) -> Any:
    import pyarrow as pa

    return pa.array([False] * table.num_rows, pa.bool_())


@dataclass
class GatedEvents:
    """The weighted item events the model may learn from, and what was left out."""

    frame: Any
    """Spark DataFrame: subject, item_id, weight (float), ts (epoch seconds, double), purchase
    (bool: a purchase event, for the basket parts)."""
    excluded: Counter[str]
    rows_read: int
    stale: Any = None
    """The retention rule as a Spark condition over ``type`` and ``ts`` (None: keep all)."""
    refused: Any = None
    """The subjects the processing gate refused (a DataFrame of ``subject``), or None."""

    def gate(self, frame: Any) -> Any:
        """Another read of the same events (``frame`` with ``type``, ``user_id``,
        ``anonymous_id`` and ``timestamp``) kept exactly as this one was: past retention
        and refused people out."""
        from pyspark.sql import functions as F

        frame = frame.withColumn("ts", F.col("timestamp").cast("double")).withColumn(
            "subject", subject_column())
        if self.stale is not None:
            frame = frame.where(~self.stale)
        if self.refused is not None:
            frame = frame.join(F.broadcast(self.refused), on="subject", how="left_anti")
        return frame


def subject_column() -> Any:
    """The person an event belongs to: the user id, else ``anon:`` and the anonymous id."""
    from pyspark.sql import functions as F

    return (F.when(F.col("user_id").isNotNull(), F.col("user_id"))
            .otherwise(F.concat(F.lit("anon:"), F.col("anonymous_id"))))


def read_events(
    spark: Any,
    path: str,
    *,
    tenant: str,
    privacy: TrainingPrivacy | None,
    weights: EventWeights,
    now: datetime,
    custom_types: Iterable[str] = (),
) -> GatedEvents:
    """Read, check, gate and weight the events at ``path`` (see the module docstring)."""
    from pyspark.sql import functions as F

    check_files(path)
    try:
        raw = spark.read.parquet(path)
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise InvalidInput(f"{path}: missing column(s) {', '.join(missing)}", field="events",
                           accepted="the columns of personify export events")
    cols = [F.col(c) for c in REQUIRED_COLUMNS] + [
        (F.col(c) if c in raw.columns else F.lit(None)).cast("double").alias(c)
        for c in OPTIONAL_COLUMNS
    ]
    events = raw.select(*cols).withColumn("ts", F.col("timestamp").cast("double"))
    orphan = (F.col("user_id").isNull() & F.col("anonymous_id").isNull()).cast("int")
    try:
        per_type = events.groupBy("type").agg(F.count("*").alias("n"),
                                              F.sum(orphan).alias("orphans")).collect()
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    counts = {r["type"]: int(r["n"]) for r in per_type}
    no_subject = sum(int(r["orphans"] or 0) for r in per_type)
    accepted = BUILTIN_EVENT_TYPES | set(custom_types)
    unknown = sorted(str(t) for t in counts if t not in accepted)
    if unknown:
        raise _bad_rows(
            path, events, F.col("type") == unknown[0], ["type"],
            lambda t: _equals(t, "type", unknown[0]),
            f"unknown event type(s) {', '.join(repr(u) for u in unknown)}",
            "one of " + ", ".join(sorted(accepted))
            + " (declare custom types with PERSONIFY_CUSTOM_EVENT_TYPES)",
        )
    if no_subject:
        raise _bad_rows(
            path, events, F.col("user_id").isNull() & F.col("anonymous_id").isNull(),
            ["user_id", "anonymous_id"], _no_subject, "an event without user_id or anonymous_id",
            "every event with a user_id or an anonymous_id",
        )
    rows_read = sum(counts.values())
    events = events.withColumn("subject", subject_column())
    excluded: Counter[str] = Counter()
    stale = _stale(privacy, counts, now)
    events = _retention(events, stale, excluded)
    events, refused = _gate(spark, events, privacy, tenant, excluded)
    weighted = events.where(F.col("item_id").isNotNull()).withColumn(
        "weight", weight_column(weights, counts)
    ).where(F.col("weight").isNotNull())
    purchase = (F.col("type") == F.lit("purchase")).alias("purchase")
    return GatedEvents(weighted.select("subject", "item_id", "weight", "ts", purchase),
                       excluded, rows_read, stale, refused)


def _equals(table: Any, column: str, value: str) -> Any:
    import pyarrow.compute as pc

    return pc.fill_null(pc.equal(table[column], value), False)


def _no_subject(table: Any) -> Any:
    import pyarrow.compute as pc

    return pc.and_(pc.is_null(table["user_id"]), pc.is_null(table["anonymous_id"]))


def _bad_rows(path: str, events: Any, condition: Any, columns: list[str],
              bad: Callable[[Any], Any], what: str, accepted: str) -> InvalidInput:
    from pyspark.sql import functions as F

    where = locate(path, columns, bad)
    if where is None:  # a file system pyarrow cannot open: Spark names the file
        row = events.where(condition).select(F.input_file_name().alias("f")).first()
        place = row["f"] if row is not None else path
    else:
        place = f"{where[0]}, row group {where[1]}"
    return InvalidInput(f"{what} in {place}", field="events", accepted=accepted)


def weight_column(weights: EventWeights, types: Iterable[str]) -> Any:
    """``EventWeights.weight`` as a Spark column (null = the event does not count)."""
    from pyspark.sql import functions as F

    expr: Any = None
    for event_type in sorted(set(types)):
        if event_type == "rating":
            value = (F.col("value") - F.lit(weights.rating_neutral)) * F.lit(weights.rating_scale)
            value = F.when(F.col("value").isNotNull(), value)
        else:
            base = weights.weights.get(event_type)
            if base is None:
                continue
            value = F.lit(float(base))
            if weights.use_quantity:
                value = F.when(F.col("quantity") > 0, value * F.col("quantity")).otherwise(value)
        cond = F.col("type") == event_type
        expr = F.when(cond, value) if expr is None else expr.when(cond, value)
    return (expr if expr is not None else F.lit(None)).cast("double")


def _stale(privacy: TrainingPrivacy | None, counts: dict[str, int], now: datetime) -> Any:
    """The retention policy's cutoffs as one condition (None when nothing is past them)."""
    from pyspark.sql import functions as F

    policy = privacy.retention if privacy is not None else None
    if policy is None:
        return None
    stale: Any = None
    for event_type in counts:
        cutoff = policy.cutoff(event_type, now)
        if cutoff is None:
            continue
        cond = (F.col("type") == event_type) & (F.col("ts") < F.lit(cutoff.timestamp()))
        stale = cond if stale is None else stale | cond
    return stale


def _retention(events: Any, stale: Any, excluded: Counter[str]) -> Any:
    from pyspark.sql import functions as F

    if stale is None:
        return events
    marked = events.withColumn("_stale", stale).cache()
    dropped = marked.where(F.col("_stale")).count()
    if dropped:
        excluded["past retention"] += dropped
    return marked.where(~F.col("_stale")).drop("_stale")


def _gate(spark: Any, events: Any, privacy: TrainingPrivacy | None, tenant: str,
          excluded: Counter[str]) -> tuple[Any, Any]:
    """The processing gate's own decision (``ProcessingGate.refusal``) for every distinct
    subject, one per subject as in-process; refused subjects are removed with an anti-join
    (returned too, for the ranker's read of the impressions)."""
    from pyspark.sql import functions as F

    gate = privacy.gate if privacy is not None else None
    if gate is None:
        return events, None
    per_subject = events.groupBy("subject").count().collect()
    refused = []
    for row in per_subject:
        reason = gate.refusal(tenant, row["subject"])
        if reason is not None:
            refused.append((row["subject"], reason))
            excluded[reason] += int(row["count"])
    if not refused:
        return events, None
    frame = spark.createDataFrame(refused, "subject string, reason string").select("subject")
    return events.join(F.broadcast(frame), on="subject", how="left_anti"), frame
