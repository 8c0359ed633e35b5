"""``personify event-types``: a shop whose export has only its own event type (``wishlist``)
declares it with a training weight; the import accepts it and ``personify train`` learns from
it; the same events with no weight are stored but are not feedback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from test_onramp import write_orders
from typer.testing import Result

IMPORT = ["import", "events", "orders.csv", "--map", "user_id=customer_id", "--map",
          "item_id=sku", "--map", "timestamp=ordered_at", "--default", "type=wishlist",
          "--no-progress"]


def test_a_declared_weight_is_what_training_learns_from(
    personify: Callable[..., Result], tmp_path: Path
) -> None:
    write_orders(tmp_path / "orders.csv")
    assert personify("init", "--legal-basis", "consent").exit_code == 0
    refused = personify(*IMPORT)
    assert "unknown event type 'wishlist'" in " ".join(refused.output.split())

    declared = personify("event-types", "put", "wishlist", "--description",
                         "put on the wish list")
    assert declared.exit_code == 0, declared.output
    imported = personify(*IMPORT)
    assert imported.exit_code == 0, imported.output
    assert "320" in imported.output
    unweighted = personify("train", "--no-select")
    assert unweighted.exit_code == 2
    assert "0 usable item events" in " ".join(unweighted.output.split())

    weighted = personify("event-types", "put", "wishlist", "--weight", "3", "--needs-item")
    assert weighted.exit_code == 0 and "redefined wishlist" in weighted.output
    listed = personify("event-types", "list")
    assert listed.output.split() == ["wishlist", "3", "item"]
    trained = personify("train", "--no-select")
    assert trained.exit_code == 0, trained.output
    assert "320 events" in trained.output


def test_bad_declarations_name_the_field(personify: Callable[..., Result]) -> None:
    builtin = personify("event-types", "put", "purchase", "--weight", "2")
    assert builtin.exit_code == 2 and "built-in" in builtin.output
    too_heavy = personify("event-types", "put", "wishlist", "--weight", "1e9")
    assert too_heavy.exit_code == 2 and "weight" in too_heavy.output
    missing = personify("event-types", "delete", "never")
    assert missing.exit_code == 2 and "no declared event type 'never'" in missing.output
