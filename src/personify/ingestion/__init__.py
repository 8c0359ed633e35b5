"""Ingestion: validate incoming records one by one, store the good ones, report the bad ones."""

from personify.ingestion.events import EventIngestor, EventListener
from personify.ingestion.validation import BatchResult, Rejection, validate_each

__all__ = ["BatchResult", "EventIngestor", "EventListener", "Rejection", "validate_each"]
