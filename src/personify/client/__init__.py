"""A small typed Python client for the Personify HTTP API (sync and async, on httpx)."""

from personify.client.async_client import AsyncPersonifyClient
from personify.client.results import (
    BulkResult,
    Consents,
    CreatedKey,
    ErasureReceipt,
    EventAck,
    IngestResult,
    RejectedRecord,
)
from personify.client.sync import PersonifyClient

__all__ = [
    "AsyncPersonifyClient",
    "BulkResult",
    "Consents",
    "CreatedKey",
    "ErasureReceipt",
    "EventAck",
    "IngestResult",
    "PersonifyClient",
    "RejectedRecord",
]
