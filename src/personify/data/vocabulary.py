"""Id vocabularies: external string ids <-> dense integer indices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray


class Vocabulary:
    """A frozen, ordered mapping between external ids and ``0..n-1``."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids: list[str] = list(dict.fromkeys(ids))
        self._index = {value: i for i, value in enumerate(self.ids)}

    def __getstate__(self) -> dict[str, object]:
        # a loading server must not stall its requests: the C unpickler holds the GIL until it
        # is done, so the ids travel as one NUL-joined string (one object to unpickle, one fast
        # split) when no id holds a NUL, and the index is rebuilt by Python code, which lets
        # other threads run
        state = {k: v for k, v in self.__dict__.items() if k not in ("_index", "ids")}
        joined = "\0".join(self.ids)
        if len(self.ids) > 1 and joined.count("\0") == len(self.ids) - 1:
            state["joined_ids"] = joined
        else:
            state["ids"] = self.ids
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        state = dict(state)
        joined = state.pop("joined_ids", None)
        if isinstance(joined, str):
            state["ids"] = joined.split("\0")
        self.__dict__.update(state)
        if "_index" not in state:  # pickles of earlier releases hold the index itself
            self._index = {value: i for i, value in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, value: object) -> bool:
        return value in self._index

    def index(self, value: str) -> int:
        """The index of ``value``; raises KeyError for an unknown id."""
        return self._index[value]

    def get(self, value: str, default: int = -1) -> int:
        return self._index.get(value, default)

    def indices(self, values: Sequence[str], default: int = -1) -> NDArray[np.int64]:
        """Indices of ``values``; unknown ids map to ``default``."""
        return np.fromiter((self._index.get(v, default) for v in values), np.int64, len(values))

    def lookup(self, indices: Iterable[int]) -> list[str]:
        return [self.ids[int(i)] for i in indices]

    def to_list(self) -> list[str]:
        return list(self.ids)
