"""One SparkSession for a training run: local mode by default, any master Spark accepts."""

from __future__ import annotations

import os
import sys
from typing import Any

from personify.domain.errors import InvalidInput, Unavailable

DEFAULT_MASTER = "local[*]"


def require_pyspark() -> Any:
    """The ``pyspark.sql`` module, or Unavailable naming the extra to install."""
    try:
        import pyspark.sql
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise Unavailable(
            "training on Spark needs PySpark, which is not installed",
            field="engine", accepted="pip install 'personify[spark]' (and Java 17), "
            "or --engine local",
        ) from exc
    return pyspark.sql


def check_master(master: str) -> str:
    """``local``, ``local[N]``, ``local[*]``, ``spark://host:port``, ``yarn``, ``k8s://...``."""
    ok = (
        master in ("local", "yarn")
        or (master.startswith("local[") and master.endswith("]"))
        or master.startswith(("spark://", "k8s://", "mesos://"))
    )
    if not ok:
        raise InvalidInput(
            f"unknown Spark master {master!r}", field="master",
            accepted="local[*], local[N], spark://HOST:PORT, yarn or k8s://HOST:PORT",
        )
    return master


def spark_session(
    master: str = DEFAULT_MASTER,
    *,
    app_name: str = "personify-train",
    shuffle_partitions: int | None = None,
    conf: dict[str, str] | None = None,
) -> Any:
    """Get or create the session (Python workers run this interpreter; Arrow on)."""
    sql = require_pyspark()
    check_master(master)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        sql.SparkSession.builder.master(master).appName(app_name)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if master.startswith("local"):  # local mode: everything on the loopback interface
        builder = (builder.config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.driver.host", "127.0.0.1"))
    if shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # Java missing or the master unreachable
        raise Unavailable(
            f"cannot start Spark ({master}): {str(exc).strip().splitlines()[0][:300]}",
            field="master", accepted="a reachable master, with Java 17 on this machine",
        ) from exc
