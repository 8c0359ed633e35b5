"""Bulk import speed: the full UCI Online Retail file (541,909 lines) into a fresh SQLite file
with the ``online-retail`` preset (users + items + events in one pass), then a re-run of the
same file (everything acknowledged as duplicates), then an export of the events.

    python benchmarks/bulk_import.py [--db /tmp/personify-bench.db] [--progress]

Writes ``benchmarks/results/bulk_import.json``. Wall time depends on what else runs on the
machine; ``import_cpu_seconds`` (this process's CPU time) and the load average are recorded
next to it.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_results
from personify.jobs.bulk_export import export_table
from personify.jobs.bulk_import import ImportReport, import_file
from personify.storage.registry import open_stores

DATASET = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "datasets"
    / "online_retail_uci"
    / "online_retail.csv.gz"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", default=str(DATASET))
    parser.add_argument("--db", default=None, help="SQLite file (default: a temporary one)")
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db or Path(tmp) / "bench.db")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        stores = open_stores(f"sqlite:///{db}")
        try:

            def run_import() -> ImportReport:
                """The whole file into the store (the second time: every record a repeat)."""
                return import_file(args.file, "all", stores, "default", preset="online-retail",
                                   batch_size=args.batch_size, progress=args.progress)

            cpu = time.process_time()
            first = run_import()
            import_cpu = time.process_time() - cpu
            load_after_import = os.getloadavg()[0]
            cpu = time.process_time()
            again = run_import()
            reimport_cpu = time.process_time() - cpu
            started = time.perf_counter()
            exported = export_table("events", Path(tmp) / "events.jsonl.gz", stores, "default")
            export_seconds = time.perf_counter() - started
            counts = {
                "events": stores.events.count("default"),
                "users": stores.users.count("default"),
                "items": stores.catalog.count("default"),
            }
        finally:
            stores.close()
        db_bytes = sum(
            os.path.getsize(f"{db}{s}") for s in ("", "-wal") if os.path.exists(f"{db}{s}")
        )
    metrics = {
        "import_seconds_online_retail": round(first.seconds, 2),
        "import_cpu_seconds": round(import_cpu, 2),
        "import_rows": first.rows,
        "import_rows_per_s": round(first.rows_per_second),
        "events_stored": first.stored,
        "rows_skipped_not_customer_actions": first.skipped,
        "rows_rejected": first.rejected,
        "users_upserted": first.extra_records.get("users", 0),
        "items_upserted": first.extra_records.get("items", 0),
        "reimport_seconds": round(again.seconds, 2),
        "reimport_cpu_seconds": round(reimport_cpu, 2),
        "reimport_stored": again.stored,
        "reimport_duplicates": again.duplicates,
        "export_events_seconds": round(export_seconds, 2),
        "export_events_rows": exported.rows,
        "store_counts": counts,
        "sqlite_bytes": db_bytes,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average_1m_after_import": round(load_after_import, 2),
        "cpu_count": os.cpu_count(),
    }
    path = write_results("bulk_import", metrics)
    for name, value in metrics.items():
        print(f"{name:36} {value}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
