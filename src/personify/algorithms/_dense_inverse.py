"""In-place inverse of a large symmetric positive-definite matrix (EASE's Gram matrix).

Memory plan: SciPy's LAPACK ``?potrf`` / ``?potri`` overwrite the input, so the peak is one
``n x n`` matrix; SciPy's bundled LAPACK uses 32-bit indices and is not trusted above
``SCIPY_SAFE_N`` items, where PyTorch's CPU build (MKL / 64-bit) is used when installed; it
needs two ``n x n`` matrices at its peak.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import numpy as np
import scipy.linalg
from numpy.typing import NDArray

from personify.domain.errors import ConfigurationError, Unavailable

Backend = Literal["auto", "scipy", "torch", "numpy"]
BACKENDS = ("auto", "scipy", "torch", "numpy")
SCIPY_SAFE_N = 32_768
"""Above this many rows SciPy's 32-bit LAPACK is not used by ``auto`` (n^2 nears 2^31)."""


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def matrices_needed(n: int, backend: Backend) -> int:
    """How many ``n x n`` matrices the chosen backend holds at its peak."""
    return 2 if resolve_backend(n, backend) in ("torch", "numpy") else 1


def resolve_backend(n: int, backend: Backend) -> str:
    if backend not in BACKENDS:
        raise ConfigurationError(
            f"unknown inverse backend {backend!r}", field="backend", accepted=", ".join(BACKENDS)
        )
    if backend != "auto":
        return backend
    if n <= SCIPY_SAFE_N:
        return "scipy"
    return "torch" if torch_available() else "scipy"


def _symmetrize_from_lower(a: NDArray[np.floating], block: int = 2048) -> None:
    """Copy the lower triangle of a C-ordered square matrix onto its upper triangle, in place."""
    n = a.shape[0]
    for r0 in range(0, n, block):
        r1 = min(r0 + block, n)
        diag = a[r0:r1, r0:r1]
        diag[...] = np.tril(diag) + np.tril(diag, -1).T
        if r1 < n:
            a[r0:r1, r1:] = a[r1:, r0:r1].T


def inverse_spd_inplace(a: NDArray[np.floating], backend: Backend = "auto") -> NDArray[np.floating]:
    """Inverse of the SPD matrix ``a`` (C-ordered, float32 or float64); may reuse ``a``'s memory,
    which is then invalid. Returns the full symmetric inverse."""
    n = a.shape[0]
    chosen = resolve_backend(n, backend)
    if chosen == "numpy":
        return np.linalg.inv(a).astype(a.dtype, copy=False)
    if chosen == "torch":
        if not torch_available():
            raise Unavailable(
                "the torch backend needs PyTorch (CPU build) installed",
                field="backend",
                accepted="pip install torch (CPU wheel), or backend='scipy'",
            )
        import torch

        # Results are written back into ``a``'s buffer; each call holds one temporary n x n
        # matrix, so the peak is two matrices (measured: the ``out=`` calls still copy once).
        tensor = torch.from_numpy(a)
        torch.linalg.cholesky(tensor, out=tensor)
        torch.cholesky_inverse(tensor, out=tensor)
        return a
    # scipy: a C-ordered symmetric matrix is its own F-ordered transpose -> LAPACK works in place.
    potrf, potri = scipy.linalg.get_lapack_funcs(("potrf", "potri"), (a,))
    fview = a.T
    c, info = potrf(fview, lower=0, overwrite_a=1, clean=0)
    if info != 0:
        raise ConfigurationError(
            f"Cholesky factorisation failed (info={info}): the matrix is not positive definite",
            field="l2",
            accepted="a larger regularisation l2",
        )
    inv, info = potri(c, lower=0, overwrite_c=1)
    if info != 0:
        raise ConfigurationError(f"Cholesky inverse failed (info={info})", field="l2")
    # F-ordered upper triangle == C-ordered lower triangle of the same buffer.
    out = np.asarray(inv.T) if inv.flags.f_contiguous else np.ascontiguousarray(inv.T)
    _symmetrize_from_lower(out)
    return out
