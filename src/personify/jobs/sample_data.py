"""The bundled Online Retail sample (Chen 2015, CC BY 4.0): where it is, and loading it into the
stores through the ordinary bulk-import path (``online-retail`` preset). Loading is idempotent:
a second load stores nothing new, so the demo can call it on every start."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from personify.data.online_retail import is_product_action, iter_lines
from personify.ingestion import EventIngestor
from personify.jobs.bulk_import import import_file
from personify.jobs.import_report import ImportReport
from personify.jobs.online_retail_import import PRESET_NAME
from personify.jobs.record_sinks import ImportStores

SAMPLE_FILE = "online_retail_sample.csv.gz"
SAMPLE_ATTRIBUTION = (
    "Chen, D. (2015). Online Retail [Dataset]. UCI Machine Learning Repository. "
    "https://doi.org/10.24432/C5BW33 (CC BY 4.0)"
)


def sample_path() -> Path:
    """The bundled sample file inside the installed package."""
    return Path(str(resources.files("personify.sample_data").joinpath(SAMPLE_FILE)))


@dataclass(frozen=True)
class SampleCounts:
    """How many records of the sample a tenant holds."""

    users: int
    items: int
    events: int


def sample_counts(stores: ImportStores, tenant: str) -> SampleCounts:
    return SampleCounts(
        users=stores.users.count(tenant),
        items=stores.catalog.count(tenant),
        events=stores.events.count(tenant),
    )


def last_event_id(path: str | Path | None = None) -> str | None:
    """The id of the sample's last event (the import writes events in file order, then users
    and items, so this event and a non-empty catalogue mean a load ran to the end)."""
    last = None
    for line in iter_lines(path or sample_path()):
        if is_product_action(line):
            last = line.event_id
    return last


def sample_loaded(stores: ImportStores, tenant: str, path: str | Path | None = None) -> bool:
    """Whether a previous :func:`load_sample` into ``tenant`` completed."""
    event_id = last_event_id(path)
    if event_id is None or stores.events.get(tenant, event_id) is None:
        return False
    return stores.catalog.count(tenant) > 0 and stores.users.count(tenant) > 0


def load_sample(
    stores: ImportStores,
    tenant: str,
    *,
    ingestor: EventIngestor | None = None,
    progress: bool = False,
    path: str | Path | None = None,
) -> ImportReport:
    """Import the sample's users, items and events into ``tenant`` (nothing is stored twice)."""
    return import_file(
        path or sample_path(),
        "all",
        stores,
        tenant,
        ingestor=ingestor,
        preset=PRESET_NAME,
        progress=progress,
    )
