"""What an EASE model version keeps so that an erasure can remove a person from it exactly.

EASE's weights come from ``P = (X^T X + l2 I)^-1``; removing a person's (binarised) row is a
rank-one change of the Gram matrix, so the inverse without them follows from ``P`` alone
(``personify.algorithms.ease.downdate_inverse``, the Woodbury identity) and the served top-k
neighbours from the new inverse (``neighbours_from_inverse``) — equal to training without the
person, with no refit.

``P`` is a dense ``n_items x n_items`` matrix in the model's dtype (float32 by default): it is
written next to the version (``ease_inverse.npy``, ``n_items^2 x 4`` bytes, e.g. 400 MB for 10,000
items, 1.6 GB for 20,000) when ``train_tenant`` trains an ``ease`` neighbour model with privacy on.
The erasure reads it memory-mapped and writes the new one block by block, so it holds only a
block of float64 rows (about 32 MB) besides the page cache, and costs ``O(n_items^2 r)`` for
``r`` people at once. The file of the derived version is hard-linked into the rewritten base
(one copy on disk for both); a scratch file is removed when its handle is garbage collected.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from personify.algorithms.ease import (
    EASE,
    downdate_inverse,
    inverse_from_weights,
    neighbours_from_inverse,
)

EASE_FILE = "ease_inverse.npy"
EASE_META = "ease_inverse.json"


@dataclass(eq=False)
class EaseInverse:
    """A handle on a stored ``P`` and the number of neighbours the bundle keeps per item."""

    path: Path
    neighbours: int
    scratch: bool = False
    """A file produced by :func:`forget_ease`, not yet in a version directory: removed with
    the handle (the copies :func:`place_ease` made stay)."""
    _cleanup: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.scratch:
            self._cleanup = weakref.finalize(self, _unlink, str(self.path))

    def matrix(self) -> np.memmap[Any, Any]:
        """``P``, memory-mapped read-only."""
        return np.load(self.path, mmap_mode="r")


def _unlink(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def save_ease_inverse(directory: Path, model: EASE, neighbours: int) -> EaseInverse:
    """Write the fitted ``model``'s ``P`` (rebuilt from its weights and ``diag(P)``, no second
    dense matrix in memory) into ``directory``, atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ease_inverse.", suffix=".npy")
    os.close(fd)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=model.B_.dtype, shape=model.B_.shape)
        inverse_from_weights(model.B_, model.p_diag_, out)
        out.flush()
        del out
        os.replace(tmp, directory / EASE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _write_meta(directory, neighbours)
    return EaseInverse(directory / EASE_FILE, neighbours)


def _write_meta(directory: Path, neighbours: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ease_meta.", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump({"neighbours": int(neighbours)}, fh)
    os.replace(tmp, directory / EASE_META)


def load_ease_inverse(directory: Path) -> EaseInverse | None:
    path, meta = directory / EASE_FILE, directory / EASE_META
    if not (path.exists() and meta.exists()):
        return None
    return EaseInverse(path, int(json.loads(meta.read_text())["neighbours"]))


def remove_ease_inverse(directory: Path) -> None:
    """Delete a version's ``P`` (its index no longer has one: it must not outlive the rows)."""
    (directory / EASE_FILE).unlink(missing_ok=True)
    (directory / EASE_META).unlink(missing_ok=True)


def place_ease(inverse: EaseInverse, directory: Path) -> None:
    """Make ``inverse`` the ``P`` of ``directory`` (hard link, copy across file systems),
    atomically replacing the one there."""
    target = directory / EASE_FILE
    if target.exists() and os.path.samefile(inverse.path, target):
        _write_meta(directory, inverse.neighbours)
        return
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".ease_inverse.{os.getpid()}.{id(inverse)}.npy"
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(inverse.path, tmp)
        except OSError:
            shutil.copyfile(inverse.path, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_meta(directory, inverse.neighbours)


_RECENT: OrderedDict[tuple[Any, ...], tuple[EaseInverse, sp.csr_matrix]] = OrderedDict()
_RECENT_LOCK = threading.Lock()
RECENT = 2
"""Downdates remembered: one erasure rewrites every version on disk holding the person, and
versions derived from one another share their ``P`` file (same inode, same rows removed)."""


def _downdate_key(inverse: EaseInverse, removed: sp.csr_matrix) -> tuple[Any, ...]:
    """The result depends only on the ``P`` file (replaced, never written in place: its device
    and inode name its content) and the removed rows."""
    stat = os.stat(inverse.path)
    rows = sp.csr_matrix(removed)
    return (
        stat.st_dev,
        stat.st_ino,
        stat.st_mtime_ns,
        inverse.neighbours,
        rows.shape,
        rows.indptr.tobytes(),
        rows.indices.tobytes(),
        rows.data.tobytes(),
    )


def forget_ease(
    inverse: EaseInverse, removed: sp.csr_matrix, previous: sp.csr_matrix | None = None
) -> tuple[EaseInverse, sp.csr_matrix]:
    """``P`` without the ``removed`` rows (a scratch file next to the old one) and the bundle's
    neighbours recomputed from it (``previous``, the neighbours before, only speeds that up)."""
    key = _downdate_key(inverse, removed)
    with _RECENT_LOCK:
        if key in _RECENT:
            _RECENT.move_to_end(key)
            return _RECENT[key]
    p = inverse.matrix()
    fd, tmp = tempfile.mkstemp(
        dir=inverse.path.parent, prefix=".ease_inverse.scratch.", suffix=".npy"
    )
    os.close(fd)
    fresh = EaseInverse(Path(tmp), inverse.neighbours, scratch=True)
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=p.dtype, shape=p.shape)
    downdate_inverse(p, removed, out)
    out.flush()
    neighbours = neighbours_from_inverse(out, inverse.neighbours, previous)
    del out, p
    with _RECENT_LOCK:
        _RECENT[key] = (fresh, neighbours)
        while len(_RECENT) > RECENT:
            _RECENT.popitem(last=False)  # its scratch file goes with the last handle
    return fresh, neighbours
