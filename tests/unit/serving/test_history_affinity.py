"""``ModelBundle.history_affinity`` (the personal re-weighting of similar items) gives, for the
asked items only, exactly the normalised scores of the full ``history_scores`` fold-in."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from personify.data.vocabulary import Vocabulary
from personify.serving.bundle import ModelBundle


def test_affinity_equals_the_normalised_full_fold_in() -> None:
    rng = np.random.default_rng(3)
    n = 60
    dense = rng.random((n, n)).astype(np.float32)
    dense[dense < 0.8] = 0.0
    np.fill_diagonal(dense, 0.0)
    ids = [f"i{k}" for k in range(n)]
    bundle = ModelBundle("v1", Vocabulary(ids), sp.csr_matrix(dense), np.zeros(n, np.float32))
    history = ["i3", "i7", "i3", "i40", "unknown"]  # a repeat counts twice, as in the fold-in
    found, scores, _ = bundle.history_scores(history, [1.0] * len(history), n)
    full = dict(zip(found, scores / scores.max(), strict=True))
    asked = ["i1", "i3", "i12", "i59", "nope", *found[:5]]
    got = bundle.history_affinity(history, asked)
    expected = [full.get(i, 0.0) for i in asked]
    assert np.allclose(got, expected, atol=1e-6)
    assert got[1] == 0.0, "a history item itself scores 0"
    assert got[4] == 0.0, "an unknown id scores 0"
    assert bundle.history_affinity(["unknown"], asked).tolist() == [0.0] * len(asked)
