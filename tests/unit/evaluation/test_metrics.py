"""Metrics against small hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from personify.evaluation import metrics

# user 0: relevant {1, 4, 7}; ranked [4, 2, 7, 9] -> hits at ranks 1 and 3
# user 1: relevant {0};       ranked [3, 0, -1, -1] -> hit at rank 2, padding never hits
# user 2: relevant {5, 6};    ranked [1, 2, 3, 8] -> no hit
RANKED = np.array([[4, 2, 7, 9], [3, 0, -1, -1], [1, 2, 3, 8]])
RELEVANT = sp.csr_matrix(
    (np.ones(6), ([0, 0, 0, 1, 2, 2], [1, 4, 7, 0, 5, 6])), shape=(3, 10)
)
N_REL = np.array([3, 1, 2])


@pytest.fixture
def hits() -> np.ndarray:
    return metrics.hit_matrix(RANKED, RELEVANT)


def test_hit_matrix(hits: np.ndarray) -> None:
    expected = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(hits, expected)


def test_hit_matrix_padding_does_not_hit_item_zero() -> None:
    rel = sp.csr_matrix(np.array([[1, 0, 0]]))
    np.testing.assert_array_equal(metrics.hit_matrix(np.array([[-1, 0]]), rel), [[False, True]])


def test_recall_divides_by_all_relevant_items(hits: np.ndarray) -> None:
    np.testing.assert_allclose(metrics.recall(hits, N_REL, 4), [2 / 3, 1.0, 0.0])
    np.testing.assert_allclose(metrics.recall(hits, N_REL, 1), [1 / 3, 0.0, 0.0])


def test_precision(hits: np.ndarray) -> None:
    np.testing.assert_allclose(metrics.precision(hits, 4), [0.5, 0.25, 0.0])


def test_ndcg_ideal_over_min_relevant_and_k(hits: np.ndarray) -> None:
    d = [1 / math.log2(r + 1) for r in range(1, 5)]
    u0 = (d[0] + d[2]) / (d[0] + d[1] + d[2])
    u1 = d[1] / d[0]
    np.testing.assert_allclose(metrics.ndcg(hits, N_REL, 4), [u0, u1, 0.0])
    # k = 2 for user 0: ideal over min(3, 2) = 2 positions
    np.testing.assert_allclose(metrics.ndcg(hits, N_REL, 2)[0], d[0] / (d[0] + d[1]))


def test_map(hits: np.ndarray) -> None:
    ap0 = (1 / 1 + 2 / 3) / 3
    ap1 = (1 / 2) / 1
    np.testing.assert_allclose(metrics.average_precision(hits, N_REL, 4), [ap0, ap1, 0.0])


def test_mrr_and_hit_rate(hits: np.ndarray) -> None:
    np.testing.assert_allclose(metrics.reciprocal_rank(hits, 4), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(metrics.hit_rate(hits, 4), [1.0, 1.0, 0.0])
    np.testing.assert_allclose(metrics.hit_rate(hits, 1), [1.0, 0.0, 0.0])


def test_zero_relevant_users_score_zero() -> None:
    hits = np.zeros((1, 3), dtype=bool)
    assert metrics.recall(hits, np.array([0]), 3)[0] == 0.0
    assert metrics.ndcg(hits, np.array([0]), 3)[0] == 0.0


def test_bad_k_is_rejected(hits: np.ndarray) -> None:
    with pytest.raises(ValueError):
        metrics.precision(hits, 0)


def test_coverage_and_gini() -> None:
    ranked = np.array([[0, 1], [0, 1], [0, 1]])
    assert metrics.coverage(ranked, 4) == 0.5
    # counts sorted [0, 0, 3, 3]: gini = sum((2i - n - 1) c_i) / (n * total)
    expected = ((2 * 3 - 5) * 3 + (2 * 4 - 5) * 3) / (4 * 6)
    assert metrics.gini(ranked, 4) == pytest.approx(expected)
    assert metrics.gini(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(0.0)


def test_novelty_and_average_popularity() -> None:
    pop = np.array([8, 4, 2, 1])
    ranked = np.array([[0, 1], [2, -1]])
    # self-information with 8 users: item0 0 bits, item1 1 bit, item2 2 bits
    assert metrics.novelty(ranked, pop, 8) == pytest.approx((0 + 1 + 2) / 3)
    assert metrics.average_popularity(ranked, pop) == pytest.approx(((8 + 4) / 2 + 2) / 2)


def test_intra_list_diversity() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert metrics.intra_list_diversity(np.array([[0, 1]]), item_vectors=vectors) == 1.0
    assert metrics.intra_list_diversity(np.array([[0, 2]]), item_vectors=vectors) == 0.0
    sim = sp.csr_matrix(np.array([[1, 0.5, 0], [0.5, 1, 0], [0, 0, 1]]))
    assert metrics.intra_list_diversity(np.array([[0, 1, 2]]), similarity=sim) == (
        pytest.approx(1 - (2 * 0.5) / 6)
    )
    with pytest.raises(ValueError):
        metrics.intra_list_diversity(np.array([[0, 1]]))
