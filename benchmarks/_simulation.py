"""Shared by ``aa_study.py`` and ``simulator.py``: the command line's ``--dataset`` (Online
Retail), the pooled A/A study over seeds, and the results file with timings and load averages."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from benchmarks._report import write_results
from personify.experiments.simulation import (
    SimulationConfig,
    aa_study,
    fit_world,
    read_retail_purchases,
)

ROOT = Path(__file__).resolve().parents[1]
RETAIL = ROOT.parent / "shared" / "datasets" / "online_retail_uci" / "online_retail.csv.gz"


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser described by the script's first docstring line, with ``--dataset``."""
    made = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    made.add_argument("--dataset", default=str(RETAIL))
    return made


def pooled_aa_study(
    dataset: str, cfg: SimulationConfig, *, runs: int, seeds: list[int]
) -> dict[str, Any]:
    """The A/A study on the world fitted to ``dataset``: ``runs`` experiments per seed."""
    m, pop, price = read_retail_purchases(dataset, n_items=cfg.n_items)
    world = fit_world(m, pop, price, rank=cfg.rank)
    return aa_study(world, runs=runs, units=cfg.aa_units, seeds=seeds)


class Timed:
    """Wall and CPU time and the load average from construction to :meth:`write`."""

    def __init__(self) -> None:
        self.load_before = os.getloadavg()
        self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def write(self, name: str, metrics: dict[str, Any]) -> Path:
        """Add ``seconds`` and ``cpu_seconds``, write ``results/<name>.json``, print it all."""
        metrics["seconds"] = round(time.perf_counter() - self.start, 1)
        metrics["cpu_seconds"] = round(time.process_time() - self.cpu_start, 1)
        path = write_results(
            name,
            metrics,
            load_average_before=[round(x, 2) for x in self.load_before],
            load_average_after=[round(x, 2) for x in os.getloadavg()],
        )
        for key, value in metrics.items():
            print(f"{key:32} {value}")
        print(f"wrote {path}")
        return path
