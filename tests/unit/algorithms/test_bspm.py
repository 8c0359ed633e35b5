"""BSPM against a dense reference and its degenerate settings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from personify.algorithms import create_model
from personify.algorithms.bspm import BSPM
from personify.algorithms.gfcf import GFCF
from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.domain.errors import ConfigurationError


def _data(x: np.ndarray) -> Interactions:
    rows, cols = np.nonzero(x)
    return Interactions.from_arrays(
        [f"u{r}" for r in rows], [f"i{c}" for c in cols], x[rows, cols],
        users=Vocabulary(f"u{k}" for k in range(x.shape[0])),
        items=Vocabulary(f"i{k}" for k in range(x.shape[1])),
    )


def _matrix(seed: int = 0, shape: tuple[int, int] = (30, 24)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.random(shape) < 0.25).astype(np.float32)
    x[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = 1  # every user has an item
    x[rng.integers(0, shape[0], shape[1]), np.arange(shape[1])] = 1  # every item has a user
    return x


def _dense_reference(x: np.ndarray, *, k: int, beta: float, t_b: float, k_b: int, t_s: float,
                     k_s: int, solver: str, merge: str) -> np.ndarray:
    """Closed forms in float64: Euler blur = ((1-h)I + hP)^K_b, RK4 sharpen = poly(-hP)^K_s,
    Euler sharpen = (I - hP)^K_s, ideal low-pass from an exact dense SVD."""
    x = x.astype(np.float64)
    di = x.sum(0)
    r = (x / np.sqrt(x.sum(1))[:, None]) / np.sqrt(di)[None, :]
    p = r.T @ r
    eye = np.eye(p.shape[0])
    h = t_b / k_b
    blur = np.linalg.matrix_power((1 - h) * eye + h * p, k_b)
    h = t_s / k_s
    if solver == "rk4":
        step = sum(np.linalg.matrix_power(-h * p, j) / math.factorial(j) for j in range(5))
    else:
        step = eye - h * p
    sharpen = np.linalg.matrix_power(step, k_s)
    _, _, vt = np.linalg.svd(r)
    ideal = np.diag(1 / np.sqrt(di)) @ vt[:k].T @ vt[:k] @ np.diag(np.sqrt(di))
    if merge == "early":
        return x @ (blur + beta * ideal) @ sharpen
    return x @ blur @ sharpen + beta * (x @ ideal)


@pytest.mark.parametrize(
    "params",
    [
        {"t_b": 1.0, "k_b": 1, "t_s": 2.5, "k_s": 1, "solver": "rk4", "merge": "early"},
        {"t_b": 0.7, "k_b": 3, "t_s": 1.2, "k_s": 2, "solver": "euler", "merge": "late"},
        {"t_b": 1.0, "k_b": 2, "t_s": 0.8, "k_s": 3, "solver": "rk4", "merge": "late"},
    ],
)
def test_scores_equal_the_dense_reference(params: dict[str, object]) -> None:
    x = _matrix()
    k, beta = 6, 0.3
    model = BSPM(factor_dim=k, idl_beta=beta, T_b=params["t_b"], K_b=params["k_b"],  # type: ignore[arg-type]
                 T_s=params["t_s"], K_s=params["k_s"], solver=params["solver"],  # type: ignore[arg-type]
                 merge=params["merge"], svd_iterations=40).fit(_data(x))  # type: ignore[arg-type]
    expected = _dense_reference(x, k=k, beta=beta, **params)  # type: ignore[arg-type]
    got = model.score(np.arange(x.shape[0]))
    assert got.shape == x.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_without_blur_sharpen_or_low_pass_scores_are_the_history() -> None:
    x = _matrix(1)
    model = BSPM(idl_beta=0.0, T_b=0.0, T_s=0.0).fit(_data(x))
    np.testing.assert_array_equal(model.score(np.arange(x.shape[0])), x)


def test_one_blur_step_without_sharpening_ranks_like_the_linear_filter() -> None:
    x = _matrix(2)
    data = _data(x)
    bspm = BSPM(idl_beta=0.0, T_b=1.0, K_b=1, T_s=0.0).fit(data)
    linear = GFCF(alpha=0.0).fit(data)
    users = np.arange(x.shape[0])
    np.testing.assert_allclose(bspm.score(users), linear.score(users), rtol=1e-5, atol=1e-6)
    ids_b, _ = bspm.recommend(users[:5], 5)
    ids_l, _ = linear.recommend(users[:5], 5)
    np.testing.assert_array_equal(ids_b, ids_l)


def test_sharpening_changes_the_ranking() -> None:
    x = _matrix(3, (40, 30))
    data = _data(x)
    users = np.arange(x.shape[0])
    plain = BSPM(idl_beta=0.0, T_s=0.0).fit(data).score(users)
    sharp = BSPM(idl_beta=0.0, T_s=2.5).fit(data).score(users)
    assert not np.allclose(plain, sharp)


def test_registered_and_validated() -> None:
    assert isinstance(create_model("bspm", factor_dim=4), BSPM)
    x = _data(_matrix())
    for bad in ({"solver": "dopri5"}, {"merge": "middle"}, {"K_s": 0}, {"T_b": -1.0},
                {"factor_dim": 0}):
        with pytest.raises(ConfigurationError) as err:
            BSPM(**bad).fit(x)
        assert err.value.field == next(iter(bad))


def test_similar_items_are_the_operator_rows_the_serving_bundle_keeps() -> None:
    import scipy.sparse as sp

    from personify.jobs.training import neighbour_matrix

    x = _matrix(3)
    model = BSPM(factor_dim=6, idl_beta=0.2, T_s=1.0).fit(_data(x))
    n_items = x.shape[1]
    eye = sp.identity(n_items, dtype=np.float32, format="csr")
    operator = model.score(np.arange(n_items), history=eye)
    ids, scores = model.similar_items([0, 5], 4)
    for row, item in enumerate((0, 5)):
        expected = operator[item].copy()
        expected[item] = -np.inf
        order = np.argsort(-expected, kind="stable")[:4]
        assert set(ids[row]) == set(order)
        assert np.allclose(scores[row], np.sort(expected[order])[::-1], rtol=1e-5)
    # a live history folded through the kept rows: the positive part of each item's row
    w = neighbour_matrix(model, n_items, n_items).toarray()
    history = [1, 7, 9]
    folded = w[history].sum(axis=0)
    expected = np.clip(operator[history], 0, None)
    expected[np.arange(3), history] = 0.0
    assert np.allclose(folded, expected.sum(axis=0), atol=1e-5)


def _reference_score(model: BSPM, users: np.ndarray) -> np.ndarray:
    """The straightforward formulation of ``BSPM.score`` (whole-batch products, RK4 with its
    four stages, float64) from the fitted state, to check the panelled, threaded one."""
    rows = model.X_[users]
    x = rows.T.toarray().astype(np.float64)
    norm = model.norm_.astype(np.float64)

    def filt(s: np.ndarray) -> np.ndarray:
        return np.asarray(norm.T @ (norm @ s))

    s = x
    h = model.T_b / model.K_b
    for _ in range(model.K_b if h else 0):
        s = s + h * (filt(s) - s)
    blurred = s
    idl = None
    if model.idl_beta != 0 and len(model.vt_):
        vt = model.vt_.astype(np.float64)
        low = (rows.toarray() * model.di_inv_sqrt_[None, :]) @ vt.T
        idl = model.idl_beta * (vt.T @ low.T) * model.di_sqrt_[:, None]
    start = blurred + idl if (idl is not None and model.merge == "early") else blurred
    steps = []
    s = start
    h = model.T_s / model.K_s
    for _ in range(model.K_s if h else 0):
        if model.solver == "euler":
            s = s - h * filt(s)
        else:
            k1 = -filt(s)
            k2 = -filt(s + h / 2 * k1)
            k3 = -filt(s + h / 2 * k2)
            k4 = -filt(s + h * k3)
            s = s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        steps.append(s)
    if model.t_point_combination and steps:
        out = (blurred + sum(steps)) / (1 + len(steps))
    else:
        out = steps[-1] if steps else start
    if idl is not None and model.merge == "late":
        out = out + idl
    return np.asarray(out.T)


@pytest.mark.parametrize("solver", ["rk4", "euler"])
@pytest.mark.parametrize("merge", ["early", "late"])
@pytest.mark.parametrize("t_point", [False, True])
@pytest.mark.parametrize("workers", [1, 2])
def test_score_equals_the_straightforward_formulation(
    solver: str, merge: str, t_point: bool, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import personify.algorithms.bspm as bspm_module

    monkeypatch.setattr(bspm_module, "_n_workers", lambda: workers)
    x = _matrix(5, (90, 50))
    users = np.r_[np.arange(x.shape[0]), [3, 3, 7]]  # 93 users: panels of 32 with padding
    for t_b, k_b, t_s, k_s in ((1.0, 1, 2.5, 1), (0.6, 2, 1.5, 3)):
        model = BSPM(factor_dim=8, idl_beta=0.3, T_b=t_b, K_b=k_b, T_s=t_s, K_s=k_s,
                     solver=solver, merge=merge, t_point_combination=t_point).fit(_data(x))
        expected = _reference_score(model, users)
        got = model.score(users)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * np.abs(expected).max())
        np.testing.assert_allclose(model.score(users[:1]), got[:1], rtol=1e-5, atol=1e-6)


def test_building_blocks_match_their_definitions() -> None:
    x = _matrix(6, (40, 36))
    model = BSPM(factor_dim=5, idl_beta=0.2, T_b=0.5, K_b=2).fit(_data(x))
    rng = np.random.default_rng(0)
    s = rng.random((x.shape[1], 45)).astype(np.float32)
    norm = model.norm_.toarray().astype(np.float64)
    p = norm.T @ norm
    np.testing.assert_allclose(model.apply_filter(s), p @ s, rtol=1e-5, atol=1e-6)
    blur = np.linalg.matrix_power(0.75 * np.eye(p.shape[0]) + 0.25 * p, 2)
    np.testing.assert_allclose(model.blur(s), blur @ s, rtol=1e-5, atol=1e-6)
    rows = model.X_[:7]
    vt = model.vt_.astype(np.float64)
    ideal = (rows.toarray() * model.di_inv_sqrt_) @ vt.T @ vt * model.di_sqrt_
    np.testing.assert_allclose(model.ideal_low_pass(rows), ideal.T, rtol=1e-5, atol=1e-6)
    assert model.score(np.zeros(0, dtype=np.int64)).shape == (0, x.shape[1])
