"""Erasure from the served model: subtract a person's contribution at once, exactly where the
model allows it.

At training time :func:`influence_of` records, from the training pass itself, per training
row (a person, keyed by pseudonym), the binarised interactions the item-item model was fitted on
and the decayed popularity the row added. :func:`forget_rows` then produces the bundle that
training *without* those rows would have produced:

* popularity — exact: the sum of the remaining rows' contributions, re-referenced to the newest
  remaining event exactly as ``decayed_popularity`` does;
* item neighbours of ``itemknn`` (cosine, asymmetric cosine, co-occurrence; binary) and of
  ``rp3beta`` (binary) — exact: co-occurrence counts, item norms (itemknn) or the random-walk
  transition probabilities and popularity penalty (rp3beta) are recomputed without the rows for
  every item whose row can change (the person's items and every item co-occurring with them),
  then the same top-k;
* item neighbours of ``ease`` (binary) — exact: the version keeps ``P = (X^T X + l2 I)^-1``
  (:mod:`personify.privacy.ease_inverse`); removing the rows is a low-rank change of the Gram
  matrix, so ``P`` without them follows by the Woodbury identity and the top-k neighbours are
  recomputed from it (a version trained without privacy, or before ``P`` was kept, has none:
  its neighbours wait for the retrain);
* the per-person lists of the user model (``personify.serving.user_lists``) — dropped: every
  list was scored through the erased rows, so the derived version serves everyone by the exact
  neighbour fold-in until the retrain the erasure requests restores them;
* the trained parts of registered sources (``ModelBundle.parts``: bought-together rules, the
  past visits of ``session_knn``,
  buy-it-again frequencies) — dropped like the lists;
* any other model, the learned blend weights and the impression ranker — not subtractable; they
  keep the person's (aggregate, non-identifying) influence until the next retrain, which no
  longer sees their events (deleted and tombstoned).

An item known only through the erased person keeps its index with no neighbours and zero
popularity: it can never be recommended through them, the same outcome as it being absent.

:mod:`personify.privacy.model_versions` applies this to the served version at erasure time and
to any version being promoted, rolled back to or loaded by a server.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms._sparse import (
    positive_matrix,
    row_normalize,
    sparse_topk_rows,
    topk_rows,
)
from personify.algorithms.itemknn import ItemKNN
from personify.algorithms.rp3beta import RP3beta
from personify.data.events import EventWeights, interactions_from_events
from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.domain.events import Event
from personify.privacy.ease_inverse import (
    EaseInverse,
    forget_ease,
    load_ease_inverse,
    place_ease,
    remove_ease_inverse,
)
from personify.storage.model_files import FileModelStore

INFLUENCE_FILE = "influence.npz"
EXACT_MODELS = frozenset({"itemknn", "rp3beta"})
TOMBSTONE_KEYS = "tombstone"
"""``InfluenceIndex.key_scheme`` of rows keyed like the erasure tombstones."""
BLOCK = 512


class ServedBundle(Protocol):
    """What this module reads of ``personify.serving.bundle.ModelBundle`` (a dataclass)."""

    version: str
    items: Vocabulary
    neighbours: sp.csr_matrix
    popularity: NDArray[np.float32]
    model_name: str
    params: dict[str, Any]


B = TypeVar("B", bound=ServedBundle)


@dataclass
class InfluenceIndex:
    """Per-row training contributions of one model version (rows keyed by pseudonym)."""

    keys: list[str]
    x: sp.csr_matrix
    """rows x items, the binarised positive interactions the item-item model saw."""
    popularity: sp.csr_matrix
    """rows x items, decayed popularity each row added, referenced to ``t_max``."""
    row_last: NDArray[np.float64]
    t_max: float
    half_life_days: float
    key_scheme: str = ""
    """``tombstone`` when the keys are :func:`~personify.privacy.pseudonyms.tombstone_key` of
    the erasure tombstones (so a tombstone names its row); empty in older indexes."""
    ease: EaseInverse | None = None
    """The version's EASE inverse (``ease`` neighbour models trained with privacy on)."""

    def rows_of(self, keys: Iterable[str]) -> NDArray[np.int64]:
        wanted = set(keys)
        return np.asarray([i for i, k in enumerate(self.keys) if k in wanted], dtype=np.int64)


def build_influence(
    events: Iterable[Event],
    items: Vocabulary,
    *,
    key: Callable[[str], str],
    weights: EventWeights | None = None,
    half_life_days: float = 30.0,
    key_scheme: str = "",
) -> InfluenceIndex:
    """Replay the training events (same filter, same weights, the bundle's item vocabulary)."""
    data = interactions_from_events(events, weights or EventWeights(), items=items)
    return influence_of(data, key=key, half_life_days=half_life_days, key_scheme=key_scheme)


def influence_of(
    data: Interactions,
    *,
    key: Callable[[str], str],
    half_life_days: float = 30.0,
    key_scheme: str = "",
) -> InfluenceIndex:
    """The index of the very interactions a bundle was fitted on (``data.items`` must be the
    bundle's item vocabulary): built from the training pass itself, it holds exactly the people
    the model saw, even one erased while training ran."""
    x = positive_matrix(data, binary=True)
    ts = data.timestamps if data.timestamps is not None else np.zeros(0)
    t_max = float(ts.max()) if ts.size else 0.0
    w = np.clip(data.weights, 0, None).astype(np.float64)
    if ts.size:
        w = w * np.exp(-np.log(2) * ((t_max - ts) / 86_400.0) / half_life_days)
    pop = sp.csr_matrix(
        (w, (data.user_idx, data.item_idx)), shape=(data.n_users, data.n_items), dtype=np.float64
    )
    pop.sum_duplicates()
    last = np.full(data.n_users, -np.inf)
    if ts.size:
        np.maximum.at(last, data.user_idx, ts)
    return InfluenceIndex(
        [key(u) for u in data.users.ids], x, pop, last, t_max, half_life_days, key_scheme
    )


def save_influence(directory: Path, index: InfluenceIndex) -> None:
    """Write ``influence.npz`` (and the EASE inverse, or remove a stale one) into a model
    version directory, atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".influence.", suffix=".npz")
    os.close(fd)
    try:
        x, p = index.x.tocoo(), index.popularity.tocoo()
        # uncompressed: every erasure rewrites the index, and compressing it was most of the
        # erasure's time at Gowalla scale (the arrays are a few tens of MB)
        np.savez(
            tmp,
            keys=np.asarray(index.keys, dtype=str),
            x_row=x.row, x_col=x.col, shape=np.asarray(x.shape),
            p_row=p.row, p_col=p.col, p_val=p.data,
            row_last=index.row_last,
            meta=np.asarray(json.dumps({"t_max": index.t_max, "half_life": index.half_life_days,
                                        "key_scheme": index.key_scheme})),
        )
        os.replace(tmp, directory / INFLUENCE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if index.ease is not None:
        place_ease(index.ease, directory)
    else:
        remove_ease_inverse(directory)


def load_influence(directory: Path) -> InfluenceIndex | None:
    path = directory / INFLUENCE_FILE
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as f:
        shape = tuple(int(v) for v in f["shape"])
        ones = np.ones(len(f["x_row"]), dtype=np.float32)
        x = sp.csr_matrix((ones, (f["x_row"], f["x_col"])), shape=shape, dtype=np.float32)
        pop = sp.csr_matrix((f["p_val"], (f["p_row"], f["p_col"])), shape=shape, dtype=np.float64)
        meta = json.loads(str(f["meta"]))
        return InfluenceIndex(
            [str(k) for k in f["keys"]], x, pop, np.asarray(f["row_last"]),
            float(meta["t_max"]), float(meta["half_life"]), str(meta.get("key_scheme", "")),
            load_ease_inverse(directory),
        )


def exact_neighbours(model_name: str, params: dict[str, Any],
                     index: InfluenceIndex | None = None) -> bool:
    """Whether :func:`forget_rows` recomputes this model's neighbours exactly (``ease`` when
    ``index`` carries its inverse)."""
    if not params.get("binary", True):
        return False
    return model_name in EXACT_MODELS or (
        model_name == "ease" and index is not None and index.ease is not None
    )


def forget_rows(bundle: B, index: InfluenceIndex, rows: NDArray[np.int64], version: str
                ) -> tuple[B, InfluenceIndex]:
    """The bundle (new ``version``) and index as if ``rows`` had never been trained on."""
    keep = np.setdiff1d(np.arange(len(index.keys)), rows)
    x = sp.csr_matrix(index.x[keep])
    pop_rows = sp.csr_matrix(index.popularity[keep])
    last = index.row_last[keep]
    t_max = float(last.max()) if last.size and np.isfinite(last).any() else index.t_max
    pop_rows = pop_rows * float(np.exp(np.log(2) * ((index.t_max - t_max) / 86_400.0)
                                       / index.half_life_days))
    popularity = np.asarray(pop_rows.sum(axis=0), dtype=np.float64).ravel().astype(np.float32)
    neighbours = bundle.neighbours
    ease = None  # an inverse that is not downdated must not outlive the rows: dropped
    if index.ease is not None and exact_neighbours(bundle.model_name, bundle.params, index):
        ease, neighbours = forget_ease(index.ease, sp.csr_matrix(index.x[rows]),
                                       bundle.neighbours)
    elif exact_neighbours(bundle.model_name, bundle.params):
        touched = np.unique(sp.csr_matrix(index.x[rows]).indices)
        recompute = _rp3beta_without if bundle.model_name == "rp3beta" else _itemknn_without
        neighbours = recompute(bundle.neighbours, index.x, x, touched, bundle.params)
    changes: dict[str, Any] = {"version": version, "neighbours": neighbours,
                               "popularity": popularity}
    if getattr(bundle, "user_lists", None) is not None:
        # the user model's lists of everyone were scored through the erased people: the version
        # serves without lists (neighbour fold-in, exact) until the retrain the erasure asks for
        changes["user_lists"] = None
    if getattr(bundle, "parts", None):
        # so were the registered sources' trained parts (purchase baskets, per-person repeat
        # purchases): dropped until the retrain, their sources are not asked meanwhile
        changes["parts"] = None
    new_bundle = replace(bundle, **changes)  # type: ignore[type-var]
    new_index = InfluenceIndex(
        [index.keys[i] for i in keep], x, sp.csr_matrix(pop_rows), last, t_max,
        index.half_life_days, index.key_scheme, ease,
    )
    return new_bundle, new_index


def _itemknn_without(
    neighbours: sp.csr_matrix, old_x: sp.csr_matrix, new_x: sp.csr_matrix,
    touched: NDArray[np.int64], params: dict[str, Any],
) -> sp.csr_matrix:
    """``ItemKNN.fit`` rows recomputed for every target item whose row can change."""
    if touched.size == 0:
        return neighbours
    model = ItemKNN(**params)
    alpha = 0.5 if model.similarity == "cosine" else model.alpha
    co_items = sp.csr_matrix(old_x[:, touched].T @ old_x)
    targets = np.union1d(touched, np.unique(co_items.indices))
    norms = np.asarray(new_x.multiply(new_x).sum(axis=0)).ravel().astype(np.float32)
    left, right = sp.csr_matrix(new_x.T), sp.csc_matrix(new_x)
    parts = []
    for start in range(0, targets.size, BLOCK):
        block = targets[start:start + BLOCK]
        dense = np.asarray((left[block] @ right).toarray(), dtype=np.float32)
        if model.similarity != "cooccurrence":
            denom = (norms[None, :] ** alpha) * (norms[block, None] ** (1 - alpha))
            dense = (dense / (denom + model.shrink + 1e-12)).astype(np.float32)
        dense[np.arange(block.size), block] = 0.0
        parts.append(topk_rows(dense, model.k))
    fresh = sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)
    n = neighbours.shape[0]
    mask = np.ones(n, dtype=np.float32)
    mask[targets] = 0.0
    place = sp.csr_matrix(
        (np.ones(targets.size, dtype=np.float32), (targets, np.arange(targets.size))),
        shape=(n, targets.size),
    )
    wt = sp.diags(mask) @ sp.csr_matrix(neighbours.T) + place @ fresh
    wt = sp.csr_matrix(wt, dtype=np.float32)
    wt.eliminate_zeros()
    return sp.csr_matrix(wt.T, dtype=np.float32)


def _rp3beta_without(
    neighbours: sp.csr_matrix, old_x: sp.csr_matrix, new_x: sp.csr_matrix,
    touched: NDArray[np.int64], params: dict[str, Any],
) -> sp.csr_matrix:
    """``RP3beta.fit`` rows (source items) as if the person had never been trained on.

    The person's own items (``touched``) change their transitions: those rows are recomputed
    in full. Every other source ``i`` keeps its walk scores — the person is not among its users —
    and only the popularity penalty of the touched *targets* changes (one interaction fewer, a
    higher score). So its new row is the top-k of its old top-k entries with the touched columns
    recomputed: an entry outside the old top-k of an untouched column was below the old k-th
    score and stays below the new one, which can only be higher.
    """
    if touched.size == 0:
        return neighbours
    model = RP3beta(**params)
    n = neighbours.shape[0]
    p_ui = row_normalize(new_x)
    p_iu = row_normalize(sp.csr_matrix(new_x.T))
    if model.alpha != 1.0:
        p_ui, p_iu = p_ui.power(model.alpha), p_iu.power(model.alpha)
    pop = np.asarray((new_x > 0).sum(axis=0)).ravel().astype(np.float32)
    penalty = np.divide(1.0, pop ** model.beta, out=np.zeros_like(pop), where=pop > 0)
    right = sp.csc_matrix(p_ui)
    # the person's items: full rows
    dense = np.asarray((p_iu[touched] @ right).toarray(), dtype=np.float32)
    dense *= penalty[None, :]
    dense[np.arange(touched.size), touched] = 0.0
    own = topk_rows(dense, model.k)
    # every other item reaching a touched item: old row, touched columns recomputed
    co_items = sp.csr_matrix(old_x[:, touched].T @ old_x)
    others = np.setdiff1d(np.unique(co_items.indices), touched)
    keep_cols = np.ones(n, dtype=np.float32)
    keep_cols[touched] = 0.0
    old_rows = sp.csr_matrix(neighbours[others]) @ sp.diags(keep_cols)
    fresh_cols = sp.csr_matrix(p_iu[others] @ sp.csc_matrix(p_ui[:, touched]))
    fresh_cols = fresh_cols @ sp.diags(penalty[touched])
    spread = sp.csr_matrix(
        (np.ones(touched.size, dtype=np.float32), (np.arange(touched.size), touched)),
        shape=(touched.size, n),
    )
    refreshed = sparse_topk_rows(sp.csr_matrix(old_rows + fresh_cols @ spread), model.k)
    sources = np.concatenate([touched, others])
    fresh = sp.vstack([own, refreshed], format="csr")
    mask = np.ones(n, dtype=np.float32)
    mask[sources] = 0.0
    place = sp.csr_matrix(
        (np.ones(sources.size, dtype=np.float32), (sources, np.arange(sources.size))),
        shape=(n, sources.size),
    )
    w = sp.diags(mask) @ sp.csr_matrix(neighbours) + place @ fresh
    w = sp.csr_matrix(w, dtype=np.float32)
    w.eliminate_zeros()
    return w


@dataclass(frozen=True)
class ModelForgetResult:
    """What happened to the served model: ``status`` is ``subtracted`` (with ``exact``
    neighbours or not), ``not_in_model``, ``no_model`` or ``no_influence_index``."""

    status: str
    version: str | None = None
    exact_neighbours: bool = False
    rows: int = 0
    lists_dropped: bool = False
    """The version served without its per-person lists until the next retrain."""
    versions_rewritten: tuple[str, ...] = ()
    """Other versions on disk that held the person, rewritten in place without them."""
    versions_deleted: tuple[str, ...] = ()
    """Versions on disk without an influence index to clean them, deleted."""


def version_dir(models: FileModelStore, tenant: str, version: str) -> Path:
    return Path(models.root) / tenant / version
