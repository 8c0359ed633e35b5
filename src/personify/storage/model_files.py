"""ModelStore on the file system: versioned model artifacts per tenant, a promoted pointer, and
rollback. Writes are atomic (temp file + rename), so a reader never sees half an artifact.

Layout: ``<root>/<tenant>/<version>/artifact.pkl`` + ``manifest.json``; ``<root>/<tenant>/PROMOTED``
holds the current version, ``HISTORY`` the promotions in order (for rollback).

``artifact.pkl`` is a pickle (protocol 5) whose large contiguous buffers (numpy arrays, scipy
sparse matrices) are stored *out of band* after it in the same file, each aligned to 64 bytes
(:data:`ARTIFACT_MAGIC` marks this layout). A load memory-maps the file copy-on-write and hands
those buffers to the unpickler, so the arrays are views of the mapping: a load unpickles only the
small object skeleton instead of copying hundreds of megabytes while holding the GIL, and a server
swapping a new model in keeps answering meanwhile. Files written as plain pickles by earlier
releases still load.
"""

from __future__ import annotations

import builtins
import json
import mmap
import os
import pickle
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from personify.domain.errors import NotFound
from personify.domain.tenants import validate_tenant_id


@dataclass
class ModelManifest:
    version: str
    tenant: str
    created_at: str
    kind: str = "bundle"
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    events_used: int = 0
    fit_seconds: float = 0.0
    promoted: bool = False
    data_as_of: str = ""
    """When the training data was read (ISO time; a derived version keeps its base's): an
    erasure recorded after it may still be in the version. Empty in older manifests."""


ARTIFACT_MAGIC = b"PERSONIFY-ARTIFACT-OOB-1\n"
"""First bytes of an artifact with out-of-band buffers (a plain pickle starts with ``\\x80``)."""

_ALIGN = 64


def _atomic_write(path: Path, data: bytes | Iterable[bytes | memoryview]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    chunks = [data] if isinstance(data, bytes) else data
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FileModelStore:
    """Versioned artifacts for every tenant under one directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, tenant: str) -> Path:
        return self.root / validate_tenant_id(tenant)

    def save(self, tenant: str, artifact: Any, manifest: ModelManifest) -> ModelManifest:
        """Store ``artifact`` under a new version directory (not promoted)."""
        directory = self._dir(tenant) / manifest.version
        _atomic_write(directory / "artifact.pkl", dump_artifact(artifact))
        _atomic_write(directory / "manifest.json", json.dumps(asdict(manifest), indent=2).encode())
        return manifest

    def list(self, tenant: str) -> list[ModelManifest]:
        base = self._dir(tenant)
        if not base.exists():
            return []
        current = self.promoted_version(tenant)
        out = []
        for path in sorted(base.glob("*/manifest.json")):
            data = json.loads(path.read_text())
            data["promoted"] = data["version"] == current
            out.append(ModelManifest(**data))
        out.sort(key=lambda m: m.created_at)
        return out

    def promoted_version(self, tenant: str) -> str | None:
        pointer = self._dir(tenant) / "PROMOTED"
        return pointer.read_text().strip() if pointer.exists() else None

    def promote(self, tenant: str, version: str) -> str:
        """Serve ``version`` from now on; returns the version actually promoted (a subclass may
        serve a cleaned derivative instead, see :meth:`_servable`)."""
        if not (self._dir(tenant) / version / "artifact.pkl").exists():
            raise NotFound(f"no model version {version!r} for tenant {tenant!r}", field="version")
        served = self._servable(tenant, version)
        self._point(tenant, served)
        return served

    def rollback(self, tenant: str) -> str:
        """Promote the version promoted before the current one; returns the version served."""
        history = self._history(tenant)
        if len(history) < 2:
            raise NotFound("no earlier promoted version to roll back to", field="version")
        history.pop()
        served = self._servable(tenant, history[-1])
        history[-1] = served
        _atomic_write(self._dir(tenant) / "HISTORY", "\n".join(history).encode())
        _atomic_write(self._dir(tenant) / "PROMOTED", served.encode())
        return served

    def _servable(self, tenant: str, version: str) -> str:
        """The version to serve when ``version`` is promoted (here: itself)."""
        return version

    def _point(self, tenant: str, version: str) -> None:
        """Make ``version`` the promoted one and append it to the history (no checks)."""
        history = self._history(tenant)
        if not history or history[-1] != version:
            history.append(version)
        _atomic_write(self._dir(tenant) / "HISTORY", "\n".join(history).encode())
        _atomic_write(self._dir(tenant) / "PROMOTED", version.encode())

    def _repoint(self, tenant: str, version: str) -> None:
        """Replace the promoted version by ``version`` (a cleaned derivative of it)."""
        history = self._history(tenant)
        if history:
            history[-1] = version
        else:
            history = [version]
        _atomic_write(self._dir(tenant) / "HISTORY", "\n".join(history).encode())
        _atomic_write(self._dir(tenant) / "PROMOTED", version.encode())

    def load(self, tenant: str, version: str | None = None) -> tuple[ModelManifest, Any]:
        """The artifact of ``version`` (default: the promoted one)."""
        version = version or self.promoted_version(tenant)
        if version is None:
            raise NotFound(f"no promoted model for tenant {tenant!r}; run `personify train`")
        directory = self._dir(tenant) / version
        if not (directory / "artifact.pkl").exists():
            raise NotFound(f"no model version {version!r} for tenant {tenant!r}", field="version")
        manifest = ModelManifest(**json.loads((directory / "manifest.json").read_text()))
        return manifest, load_artifact(directory / "artifact.pkl")

    def history(self, tenant: str) -> builtins.list[str]:
        """The promoted versions, oldest first (the last one is served)."""
        return self._history(tenant)

    def _history(self, tenant: str) -> builtins.list[str]:
        path = self._dir(tenant) / "HISTORY"
        return [v for v in path.read_text().split("\n") if v] if path.exists() else []


def dump_artifact(artifact: Any) -> list[bytes | memoryview]:
    """``artifact`` as the chunks of an artifact file: magic, header length, a JSON header of
    ``[offset, length]`` pairs, the pickle, then each out-of-band buffer at a 64-byte boundary."""
    buffers: list[pickle.PickleBuffer] = []
    body = pickle.dumps(artifact, protocol=5, buffer_callback=buffers.append)
    raws = [buf.raw() for buf in buffers]
    lengths = [len(body), *(raw.nbytes for raw in raws)]
    # the header's own length moves the offsets: lay out with a generous fixed-width header
    header_len = 64 + 48 * len(lengths)
    offset = len(ARTIFACT_MAGIC) + 8 + header_len
    spans = []
    for length in lengths:
        offset = -(-offset // _ALIGN) * _ALIGN
        spans.append([offset, length])
        offset += length
    header = json.dumps({"pickle": spans[0], "buffers": spans[1:]}).encode()
    if len(header) > header_len:  # pragma: no cover - 48 bytes hold two 20-digit numbers
        raise ValueError("artifact header too long")
    chunks: list[bytes | memoryview] = [
        ARTIFACT_MAGIC, header_len.to_bytes(8, "little"), header.ljust(header_len, b" ")
    ]
    position = len(ARTIFACT_MAGIC) + 8 + header_len
    for (start, length), chunk in zip(spans, [memoryview(body), *raws], strict=True):
        chunks.append(b"\0" * (start - position))
        chunks.append(chunk)
        position = start + length
    return chunks


def load_artifact(path: Path) -> Any:
    """The object stored at ``path`` by :func:`dump_artifact` (its arrays memory-mapped,
    copy-on-write: writable, never changing the file) or by ``pickle.dump`` (older files)."""
    with open(path, "rb") as fh:
        if fh.read(len(ARTIFACT_MAGIC)) != ARTIFACT_MAGIC:
            fh.seek(0)
            return pickle.load(fh)
        header_len = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(header_len))
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
    if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_WILLNEED"):
        mapped.madvise(mmap.MADV_WILLNEED)  # read ahead now, not on the first requests
    view = memoryview(mapped)
    start, length = header["pickle"]
    buffers = [view[o : o + n] for o, n in header["buffers"]]
    return pickle.loads(view[start : start + length], buffers=buffers)


def new_version() -> str:
    """A sortable version id: UTC time to the microsecond."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
