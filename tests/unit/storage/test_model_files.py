"""The file model store's artifact format: arrays memory-mapped on load (a hot swap unpickles only
the object skeleton), older plain-pickle files still loadable, in-place rewrites safe."""

from __future__ import annotations

import mmap
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from personify.data.vocabulary import Vocabulary
from personify.serving.bundle import ModelBundle
from personify.storage.model_files import (
    ARTIFACT_MAGIC,
    FileModelStore,
    ModelManifest,
    load_artifact,
)

T = "acme"


def _bundle(version: str, scale: float = 1.0) -> ModelBundle:
    items = Vocabulary([f"p{i}" for i in range(50)])
    rng = np.random.default_rng(0)
    neighbours = sp.random(50, 50, density=0.2, format="csr", dtype=np.float32, random_state=1)
    neighbours.data *= scale
    return ModelBundle(version, items, neighbours, rng.random(50).astype(np.float32) * scale)


def _manifest(version: str) -> ModelManifest:
    return ModelManifest(version=version, tenant=T, created_at="2026-01-01T00:00:00+00:00")


def _mapped(array: np.ndarray[Any, Any]) -> bool:
    """Whether ``array``'s memory belongs to a memory map (follows ``.base`` and buffers)."""
    obj: Any = array
    for _ in range(10):
        if isinstance(obj, mmap.mmap):
            return True
        obj = obj.obj if isinstance(obj, memoryview) else getattr(obj, "base", None)
        if obj is None:
            return False
    return False


def test_saved_arrays_load_memory_mapped_and_writable(tmp_path: Path) -> None:
    store = FileModelStore(tmp_path)
    original = _bundle("v1")
    store.save(T, original, _manifest("v1"))
    assert (tmp_path / T / "v1" / "artifact.pkl").read_bytes().startswith(ARTIFACT_MAGIC)
    _, loaded = store.load(T, "v1")
    assert isinstance(loaded, ModelBundle)
    for array in (loaded.popularity, loaded.neighbours.data, loaded.neighbours.indices):
        assert _mapped(array), array
        assert array.ctypes.data % 64 == 0
    assert (loaded.neighbours != original.neighbours).nnz == 0
    np.testing.assert_array_equal(loaded.popularity, original.popularity)
    assert loaded.items.ids == original.items.ids and loaded.items.get("p7") == 7
    assert loaded.similar("p3", 5) == original.similar("p3", 5)
    # copy-on-write: an in-place change stays in this process, the file is unchanged
    loaded.popularity[:] = 0
    np.testing.assert_array_equal(store.load(T, "v1")[1].popularity, original.popularity)


def test_rewriting_a_version_in_place_leaves_loaded_bundles_intact(tmp_path: Path) -> None:
    store = FileModelStore(tmp_path)
    store.save(T, _bundle("v1"), _manifest("v1"))
    _, before = store.load(T, "v1")
    kept = before.popularity.copy()
    store.save(T, _bundle("v1", scale=2.0), _manifest("v1"))  # what an erasure rewrite does
    np.testing.assert_array_equal(before.popularity, kept)
    np.testing.assert_allclose(store.load(T, "v1")[1].popularity, kept * 2)


def test_plain_pickle_artifacts_of_earlier_releases_still_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileModelStore(tmp_path)
    store.save(T, _bundle("v1"), _manifest("v1"))
    legacy = _bundle("v1")
    with monkeypatch.context() as patched:  # earlier releases pickled the vocabulary's index
        patched.delattr(Vocabulary, "__getstate__")
        patched.delattr(Vocabulary, "__setstate__")
        data = pickle.dumps(legacy, pickle.HIGHEST_PROTOCOL)
    assert b"_index" in data
    (tmp_path / T / "v1" / "artifact.pkl").write_bytes(data)
    loaded = load_artifact(tmp_path / T / "v1" / "artifact.pkl")
    assert loaded.items.get("p9") == 9
    np.testing.assert_array_equal(loaded.popularity, legacy.popularity)
    assert not _mapped(loaded.popularity)


@pytest.mark.parametrize(
    "ids", [[], ["a"], ["a", "b", "c"], ["", "x", ""][1:], ["a\0b", "c"], ["é", "日本", " "]]
)
def test_vocabulary_pickles_without_its_index(ids: list[str]) -> None:
    vocab = Vocabulary(ids)
    assert "_index" not in vocab.__getstate__()
    again = pickle.loads(pickle.dumps(vocab))
    assert again.ids == vocab.ids and len(again) == len(ids)
    assert all(again.index(value) == i for i, value in enumerate(vocab.ids))
    assert again.get("zz") == -1
