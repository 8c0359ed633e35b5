"""Loader for the Quantum Computing Stack Exchange network
(``datasets/stackexchange_quantumcomputing_2018``).

People (public profiles), time-stamped person -> person interactions (answers and comments: the
actor acted on a post the target owns), questions with their tags, and the tag descriptions.
Content is CC BY-SA: whoever shows it must show :data:`ATTRIBUTION`, the author's name linked to
``profile_url`` and a link to the post's ``url`` (see the data set's README).
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from personify.domain.errors import InvalidInput

DATASET_NAME = "stackexchange_quantumcomputing_2018"
SUGGESTED_CUT = datetime(2018, 7, 14, 23, 17, 3, 897000, tzinfo=UTC)
"""The data set's suggested temporal split: the 80th percentile of interaction time."""
SITE_URL = "https://quantumcomputing.stackexchange.com"
ATTRIBUTION = (
    "Source: Quantum Computing Stack Exchange (https://quantumcomputing.stackexchange.com), "
    "Stack Exchange Data Dump (content to 2018-09-02), by its contributors, "
    "licensed CC BY-SA 3.0/4.0; adapted (CSV conversion, HTML stripped) by the Personify project."
)


@dataclass(frozen=True, slots=True)
class SEPerson:
    user_id: str
    display_name: str
    about_me: str
    location: str
    created: datetime
    profile_url: str


@dataclass(frozen=True, slots=True)
class SEInteraction:
    """``actor`` answered or commented on a post owned by ``target``."""

    timestamp: datetime
    kind: str
    actor: str
    target: str
    question_id: str
    post_id: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SEQuestion:
    question_id: str
    owner: str
    created: datetime
    title: str
    tags: tuple[str, ...]
    url: str


@dataclass(slots=True)
class SENetwork:
    people: dict[str, SEPerson]
    interactions: list[SEInteraction]
    questions: dict[str, SEQuestion]
    tags: dict[str, str] = field(default_factory=dict)
    """tag name -> the tag wiki's one-paragraph excerpt."""


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh)


def _tags(text: str) -> tuple[str, ...]:
    return tuple(t for t in text.split("|") if t)


def load_stackexchange(path: str | Path) -> SENetwork:
    """Read the data set's folder. The ``Community`` bot (user -1) is left out."""
    root = Path(path)
    if not (root / "interactions.csv.gz").exists():
        raise InvalidInput(
            f"{root} does not hold the Stack Exchange network (interactions.csv.gz missing)",
            field="path",
        )
    people: dict[str, SEPerson] = {}
    for row in _rows(root / "people.csv.gz"):
        if row["user_id"] == "-1":
            continue
        people[row["user_id"]] = SEPerson(
            user_id=row["user_id"],
            display_name=row["display_name"],
            about_me=row["about_me"],
            location=row["location"],
            created=_time(row["creation_date"]),
            profile_url=row["profile_url"],
        )
    interactions = [
        SEInteraction(
            timestamp=_time(row["timestamp"]),
            kind=row["kind"],
            actor=row["actor_user_id"],
            target=row["target_user_id"],
            question_id=row["question_id"],
            post_id=row["post_id"],
            tags=_tags(row["question_tags"]),
        )
        for row in _rows(root / "interactions.csv.gz")
        if row["actor_user_id"] in people and row["target_user_id"] in people
    ]
    questions = {
        row["post_id"]: SEQuestion(
            question_id=row["post_id"],
            owner=row["owner_user_id"],
            created=_time(row["creation_date"]),
            title=row["title"],
            tags=_tags(row["question_tags"]),
            url=row["url"],
        )
        for row in _rows(root / "posts.csv.gz")
        if row["post_type"] == "question"
    }
    tags = {row["tag_name"]: row["excerpt"] for row in _rows(root / "tags.csv.gz")}
    return SENetwork(people, interactions, questions, tags)
