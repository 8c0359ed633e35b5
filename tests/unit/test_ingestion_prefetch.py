"""The ingestor asks a batch-capable erasure check once per batch, before the per-event checks."""

from __future__ import annotations

from datetime import UTC, datetime

from personify.ingestion import EventIngestor
from personify.storage.registry import open_stores


class BatchCheck:
    def __init__(self) -> None:
        self.prefetched: list[list[str]] = []
        self.known: set[str] = set()

    def prefetch(self, tenant: str, subjects: list[str]) -> None:
        self.prefetched.append(list(subjects))
        self.known |= set(subjects)

    def __call__(self, tenant: str, subject: str) -> bool:
        assert subject in self.known, f"{subject} was not prefetched"
        return subject == "gone"


def test_one_prefetch_per_batch_covers_every_identity() -> None:
    stores = open_stores("memory://")
    check = BatchCheck()
    ingestor = EventIngestor(stores.events, is_erased=check)
    now = datetime.now(UTC).isoformat()
    raws = [
        {"event_id": "a", "type": "view", "user_id": "u1", "item_id": "i", "timestamp": now},
        {"event_id": "b", "type": "view", "anonymous_id": "x", "item_id": "i", "timestamp": now},
        {"event_id": "c", "type": "view", "user_id": "gone", "item_id": "i", "timestamp": now},
        {"event_id": "d", "type": "view"},  # invalid: never asked about
    ]
    result = ingestor.ingest("default", raws)
    assert check.prefetched == [["u1", "gone", "anon:x"]]
    assert result.stored == ["a", "b"]
    assert {r.code for r in result.rejected} == {"erased", "invalid_input"}
    stores.close()
