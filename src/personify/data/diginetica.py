"""Diginetica (CIKM Cup 2016) item views as anonymous sessions, and a temporal session split.

The file is ``;``-separated ``session_id;user_id;item_id;timeframe;eventdate``; ``timeframe`` orders
the views inside a session (milliseconds since its start) and ``eventdate`` dates the session.
Preprocessing follows SR-GNN's in spirit: drop sessions shorter than ``min_session_length`` and
items seen fewer than ``min_item_support`` times (repeat until stable); test on the sessions of
the last ``test_days`` days, keeping only test views of items known from training.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.domain.errors import InvalidInput

HEADER = ("session_id", "user_id", "item_id", "timeframe", "eventdate")


@dataclass
class SessionLog:
    """Ordered item-id sequences of anonymous sessions, each dated (POSIX seconds, UTC)."""

    session_ids: list[str]
    sequences: list[list[str]]
    dates: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.session_ids)

    def subset(self, keep: NDArray[np.bool_]) -> SessionLog:
        idx = np.flatnonzero(keep)
        return SessionLog(
            [self.session_ids[i] for i in idx], [self.sequences[i] for i in idx], self.dates[idx]
        )

    def to_interactions(self, items: Vocabulary | None = None) -> Interactions:
        """Sessions as the "users" of an ``Interactions``; timestamps keep the order of views
        (session date + position in seconds), so session models can rebuild the sequences."""
        users, item_ids, stamps = [], [], []
        for sid, seq, date in zip(self.session_ids, self.sequences, self.dates, strict=True):
            for pos, item in enumerate(seq):
                users.append(sid)
                item_ids.append(item)
                stamps.append(float(date) + pos)
        return Interactions.from_arrays(users, item_ids, None, stamps, items=items)


def _filter(
    sessions: dict[str, list[str]], min_session_length: int, min_item_support: int
) -> dict[str, list[str]]:
    while True:
        support = Counter(item for seq in sessions.values() for item in seq)
        kept = {
            sid: [i for i in seq if support[i] >= min_item_support] for sid, seq in sessions.items()
        }
        kept = {sid: seq for sid, seq in kept.items() if len(seq) >= min_session_length}
        if kept == sessions:
            return kept
        sessions = kept


def read_diginetica(
    path: str | Path, *, min_session_length: int = 2, min_item_support: int = 1
) -> SessionLog:
    """Read the views file into sessions ordered by start date (then session id)."""
    views: dict[str, list[tuple[int, str]]] = defaultdict(list)
    dates: dict[str, float] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=";")
        header = tuple(next(reader, ()))
        if header != HEADER:
            raise InvalidInput(
                f"{path} does not look like Diginetica item views: header {header!r}",
                field="path",
                accepted=";".join(HEADER),
            )
        for sid, _user, item, timeframe, day in reader:
            views[sid].append((int(timeframe), item))
            dates[sid] = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
    sessions = {sid: [item for _, item in sorted(v)] for sid, v in views.items()}
    sessions = _filter(sessions, min_session_length, min_item_support)
    order = sorted(sessions, key=lambda s: (dates[s], int(s) if s.isdigit() else 0, s))
    return SessionLog(
        order, [sessions[s] for s in order], np.array([dates[s] for s in order], np.float64)
    )


def split_sessions_by_date(log: SessionLog, *, test_days: int = 7) -> tuple[SessionLog, SessionLog]:
    """Train = sessions before the last ``test_days`` days; test = the rest, with views of items
    unseen in train removed and sessions left shorter than two views dropped."""
    if len(log) == 0:
        raise InvalidInput("no sessions to split", field="log", accepted="a non-empty SessionLog")
    cutoff = float(log.dates.max()) - timedelta(days=test_days).total_seconds()
    train = log.subset(log.dates <= cutoff)
    known = {item for seq in train.sequences for item in seq}
    test = log.subset(log.dates > cutoff)
    test.sequences = [[i for i in seq if i in known] for seq in test.sequences]
    return train, test.subset(np.array([len(s) >= 2 for s in test.sequences], dtype=bool))
