"""Drop-in compatibility with the Segment (and RudderStack) HTTP tracking API."""

from personify.api.segment.mapping import DEFAULT_TRACK_MAP, MappedBatch, SegmentMapper

__all__ = ["DEFAULT_TRACK_MAP", "MappedBatch", "SegmentMapper"]
