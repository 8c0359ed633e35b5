"""Shared fixtures: real PostgreSQL / Redis / datasets, skipped with a reason when absent.

``PERSONIFY_REQUIRE_SERVICES=1`` (set by ``.ci/run``) turns every such skip into a failure, so CI
never passes by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get(
    "PERSONIFY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PERSONIFY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DATASETS_DIR = Path(
    os.environ.get("PERSONIFY_DATASETS_DIR", str(REPO_ROOT.parent / "shared" / "datasets"))
)
REQUIRE_SERVICES = os.environ.get("PERSONIFY_REQUIRE_SERVICES", "") not in ("", "0", "false")
WALL_CLOCK = os.environ.get("PERSONIFY_TEST_WALL_CLOCK", "")
"""``HH:MM``: run the suite with the wall clock moved to that UTC time of day, today (``make
any-hour`` runs the messaging tests at 03:00 and 23:00). time-machine moves ``datetime.now`` and
``time.time`` in this process and its threads; libfaketime would be the whole-process choice,
but its sleeps fail with EINVAL once Python starts a thread."""


def pytest_configure(config: pytest.Config) -> None:
    if not WALL_CLOCK:
        return
    from datetime import UTC, datetime, time

    import time_machine

    at = datetime.combine(datetime.now(UTC).date(), time.fromisoformat(WALL_CLOCK), tzinfo=UTC)
    traveller = time_machine.travel(at, tick=True)
    traveller.start()
    config.add_cleanup(traveller.stop)


def pytest_report_header() -> str | None:
    return f"wall clock moved to {WALL_CLOCK} UTC" if WALL_CLOCK else None


def unavailable(reason: str) -> None:
    """Skip, or fail when services are required (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required by PERSONIFY_REQUIRE_SERVICES but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The URL of a reachable PostgreSQL server (the ``test`` database)."""
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:  # pragma: no cover - depends on the machine
        unavailable(
            f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc.__class__.__name__}: {exc}"
        )
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards (runs never see each other)."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_server_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in postgres_server_url else "?"
    yield f"{postgres_server_url}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A reachable Redis URL; tests must use ``redis_prefix`` for their keys."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:  # pragma: no cover - depends on the machine
        unavailable(f"Redis at {REDIS_URL} is not reachable: {exc.__class__.__name__}: {exc}")
    yield REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A unique key prefix; every key under it is deleted after the test."""
    import redis

    prefix = f"ptest:{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """``../shared/datasets`` (or ``PERSONIFY_DATASETS_DIR``)."""
    if not (DATASETS_DIR / "README.md").exists():
        unavailable(f"shared datasets not found at {DATASETS_DIR} (set PERSONIFY_DATASETS_DIR)")
    return DATASETS_DIR


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local Spark session (local[2], two shuffle partitions) for every ``spark`` test;
    skipped without PySpark or Java, failed under PERSONIFY_REQUIRE_SERVICES."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("pyspark") is None:
        unavailable("PySpark is not installed (pip install 'personify[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        unavailable("Java (17) is not installed: Spark cannot start")
    from personify.jobs.spark.session import spark_session

    session = spark_session(
        "local[2]", app_name="personify-tests", shuffle_partitions=2,
        conf={"spark.default.parallelism": "2", "spark.ui.showConsoleProgress": "false",
              "spark.driver.memory": "1g"},
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
