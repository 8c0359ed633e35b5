"""Prometheus metrics of one process (``prometheus-client``), built with the runtime.

Every runtime owns a :class:`Metrics` with its own registry (two runtimes in one test process
never share counters). Counters and histograms are updated where things happen (the HTTP
middleware, the ingestion outcome hook, the messaging worker's result hook, the exposure log,
the retrain runner, the rate limiter); gauges that describe state (online state, served model,
outbox depth) are read when the registry is scraped, by :class:`_StateCollector`.

Metrics are per process: with ``personify serve --workers N`` each scrape reaches one worker,
so run one server process per port (the multi-node topology does) when every process must be
scraped (docs/deployment.md). Names follow the Prometheus conventions: a ``personify_`` prefix,
base units (``_seconds``), counters end in ``_total``; labels never carry a person's id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
RETRAIN_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0)


@dataclass
class StateProbes:
    """Callables read at scrape time (each may be left None; a failing one is skipped)."""

    online_state_people: Callable[[], int | None] | None = None
    """People (and anonymous visitors) known to the in-process online state; None on Redis."""
    online_state_fallback: Callable[[], bool] | None = None
    """True while Redis is configured but this process serves from its in-process fallback."""
    warming_up: Callable[[], bool] | None = None
    models: Callable[[], Iterable[tuple[str, str, float | None, float]]] | None = None
    """``(tenant, version, created_at epoch or None, loaded_at epoch)`` of served bundles."""
    outbox: Callable[[], dict[str, int]] | None = None
    """Outbox messages per status (a database count)."""
    extra: list[Callable[[], Iterable[Metric]]] = field(default_factory=list)


class _StateCollector(Collector):
    def __init__(self, probes: StateProbes, clock: Callable[[], float]) -> None:
        self.probes = probes
        self.clock = clock

    def describe(self) -> list[Metric]:
        return []  # values are computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        p = self.probes
        people = _safe(p.online_state_people)
        if people is not None:
            g = GaugeMetricFamily(
                "personify_online_state_people",
                "People and anonymous visitors held by the in-process online state",
            )
            g.add_metric([], float(people))
            yield g
        fallback = _safe(p.online_state_fallback)
        if fallback is not None:
            g = GaugeMetricFamily(
                "personify_online_state_fallback",
                "1 while Redis is configured but unreachable and this process serves from its "
                "in-process fallback online state",
            )
            g.add_metric([], 1.0 if fallback else 0.0)
            yield g
        warming = _safe(p.warming_up)
        if warming is not None:
            g = GaugeMetricFamily(
                "personify_warm_up_running", "1 while the start-up warm-up (models, catalogue, "
                "online-state replay) is still running",
            )
            g.add_metric([], 1.0 if warming else 0.0)
            yield g
        models = _safe(p.models)
        if models is not None:
            info = GaugeMetricFamily(
                "personify_model_info", "The served model version of each tenant (value 1)",
                labels=["tenant", "version"],
            )
            age = GaugeMetricFamily(
                "personify_model_age_seconds",
                "Seconds since the served model version was trained", labels=["tenant"],
            )
            loaded = GaugeMetricFamily(
                "personify_model_loaded_timestamp_seconds",
                "Unix time this process swapped the served model version in", labels=["tenant"],
            )
            now = self.clock()
            for tenant, version, created, loaded_at in models:
                info.add_metric([tenant, version], 1.0)
                if created is not None:
                    age.add_metric([tenant], max(0.0, now - created))
                loaded.add_metric([tenant], loaded_at)
            yield info
            yield age
            yield loaded
        outbox = _safe(p.outbox)
        if outbox is not None:
            g = GaugeMetricFamily(
                "personify_outbox_messages", "Outbox messages per status (the depth is the "
                "sum of pending, deferred and sending)", labels=["status"],
            )
            for status, count in sorted(outbox.items()):
                g.add_metric([status], float(count))
            yield g
        for extra in p.extra:
            yield from _safe(extra) or ()


def _safe(probe: Callable[[], Any] | None) -> Any:
    if probe is None:
        return None
    try:
        return probe()
    except Exception as exc:  # a scrape never fails because one probe does
        log.warning("metrics probe %s failed: %s", getattr(probe, "__name__", probe), exc)
        return None


class Metrics:
    """The registry and instruments of one process (see the module docstring)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        disable_created_metrics()  # no ``*_created`` series: half the series, nothing lost
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory, open fds
        PlatformCollector(registry=r)
        self.http_requests = Histogram(
            "personify_http_request_duration_seconds",
            "HTTP request latency by route template (never the raw path), method and status",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.events_ingested = Counter(
            "personify_events_ingested", "Events stored (new event ids) by type", ["type"],
            registry=r,
        )
        self.events_rejected = Counter(
            "personify_events_rejected", "Events rejected by reason (invalid_input, erased)",
            ["reason"], registry=r,
        )
        self.events_duplicate = Counter(
            "personify_events_duplicate",
            "Events acknowledged but not stored again (event id already stored)", registry=r,
        )
        self.online_state_lag = Histogram(
            "personify_online_state_lag_seconds",
            "Seconds from an event's receipt to its application to the online state",
            buckets=LAG_BUCKETS, registry=r,
        )
        self.model_swaps = Counter(
            "personify_model_swaps", "Promoted model versions swapped in by this process",
            ["tenant"], registry=r,
        )
        self.retrain_duration = Histogram(
            "personify_retrain_duration_seconds",
            "Wall time of background retrains by outcome (ok, failed)", ["outcome"],
            buckets=RETRAIN_BUCKETS, registry=r,
        )
        self.retrain_skipped = Counter(
            "personify_retrain_skipped",
            "Due retrains not run here because another process holds the retrain lock",
            registry=r,
        )
        self.messages = Counter(
            "personify_messages",
            "Outbox deliveries by channel and result (sent, failed, suppressed, deferred, "
            "retried)", ["channel", "result"], registry=r,
        )
        self.exposures = Counter(
            "personify_experiment_exposures",
            "First exposures of a unit to an experiment variant", ["experiment", "variant"],
            registry=r,
        )
        self.rate_limited = Counter(
            "personify_rate_limit_rejections",
            "Requests refused with 429 by limit (key, tenant)", ["limit"], registry=r,
        )
        self.probes = StateProbes()
        r.register(_StateCollector(self.probes, clock))

    def render(self) -> bytes:
        """The text exposition format of every metric of this process."""
        return generate_latest(self.registry)

    # --- hooks handed to the capabilities -------------------------------------------------

    def on_ingested(self, stored_types: Sequence[str], duplicates: int,
                    rejected_reasons: Sequence[str]) -> None:
        for event_type in stored_types:
            self.events_ingested.labels(event_type).inc()
        if duplicates:
            self.events_duplicate.inc(duplicates)
        for reason in rejected_reasons:
            self.events_rejected.labels(reason).inc()

    def on_message(self, channel: str, result: str) -> None:
        self.messages.labels(channel, result).inc()

    def on_exposure(self, experiment: str, variant: str) -> None:
        self.exposures.labels(experiment, variant).inc()

    def timed_retrain(self, run: Callable[[str], int]) -> Callable[[str], int]:
        """``run`` (the retrain of one tenant) observed in ``personify_retrain_duration``."""

        def timed(tenant: str) -> int:
            started = time.perf_counter()
            code = 1
            try:
                code = run(tenant)
                return code
            finally:
                outcome = "ok" if code == 0 else "failed"
                self.retrain_duration.labels(outcome).observe(time.perf_counter() - started)

        return timed


def start_metrics_server(metrics: Metrics, host: str, port: int) -> Any:
    """Serve ``metrics`` on ``http://host:port/metrics`` in a daemon thread (the workers, which
    have no web application); returns the server (``shutdown()`` stops it)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server
