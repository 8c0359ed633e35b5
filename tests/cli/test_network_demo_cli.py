"""``personify demo --dataset network``: the Stack Exchange network loaded (idempotently), the
people model trained, the attribution printed and carried by every person shown."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from personify.data.stackexchange import DATASET_NAME

Personify = Callable[..., Result]


def test_network_demo_loads_trains_and_attributes(
    personify: Personify, datasets_dir: Path, tmp_path: Path
) -> None:
    args = ("demo", "--dataset", "network", "--data", str(datasets_dir / DATASET_NAME),
            "--load-only", "--no-browser")
    first = personify(*args)
    assert first.exit_code == 0, first.output
    assert "402 people, 3,288 person -> person events" in first.output
    assert "quantumcomputing.stackexchange.com" in first.output and "CC BY-SA" in first.output
    assert "/people?n=5" in first.output and "/feed?n=10" in first.output
    assert "groups and posts" in first.output
    assert (tmp_path / "models" / "networking" / "default.json").exists()
    again = personify(*args)
    assert again.exit_code == 0 and "402 people, 3,288" in again.output
    shown = personify("networking", "people", "26", "--n", "3")
    assert shown.exit_code == 0, shown.output
    people = json.loads(shown.output)
    assert people["model"] == "trained" and len(people["people"]) == 3
    for person in people["people"]:
        assert person["profile_url"].startswith("https://quantumcomputing.stackexchange.com/users/")
        assert "CC BY-SA" in person["attribution"]
    feed = json.loads(personify("networking", "feed", "26", "--n", "12").output)
    posts = [e for e in feed["entries"] if e["section"] == "content"]
    assert posts and all(e["reasons"] for e in feed["entries"])
    for post in posts:  # the attribution Stack Exchange requires: source, link, author + link
        assert post["url"].startswith("https://quantumcomputing.stackexchange.com/q/")
        assert post["author"]["name"] and post["author"]["profile_url"].startswith(
            "https://quantumcomputing.stackexchange.com/users/")
        assert "CC BY-SA" in post["attribution"]
    bad = personify("demo", "--dataset", "dating", "--load-only")
    assert bad.exit_code == 2 and "dataset" in bad.output
