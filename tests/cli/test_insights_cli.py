"""``personify insights fit | show`` and the insights in ``personify privacy export``: only people
with profiling consent feed the fit."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import Result

from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.events import Event
from personify.insights.population import PopulationFiles
from personify.storage.registry import open_stores

Personify = Callable[..., Result]
AS_OF = datetime(2026, 1, 31, tzinfo=UTC)


def test_fit_show_and_export(personify: Personify, database_url: str, tmp_path: Path) -> None:
    stores = open_stores(database_url)
    try:
        events = []
        for c in range(40):
            if c < 30:
                stores.consents.append("default", ConsentRecord(
                    user_id=f"c{c}", purpose="profiling", state=ConsentState.GRANTED))
            for k in range(c % 4 + 1):
                events.append(Event(
                    event_id=f"c{c}-{k}", type="purchase", user_id=f"c{c}", item_id="i1",
                    price=10.0 + c, timestamp=AS_OF - timedelta(days=200 - 45 * k - c)))
        stores.events.append("default", events)
    finally:
        stores.close()
    result = personify("insights", "fit", "--as-of", "2026-01-31")
    assert result.exit_code == 0, result.output
    assert "30 customers" in result.output and "BG/NBD r=" in result.output
    population = PopulationFiles(tmp_path / "var" / "models").load("default")
    assert population is not None and population.as_of == AS_OF

    shown = personify("insights", "show", "c3")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["status"] == "ok" and data["profile"]["rfm"]["frequency"] == 4
    refused = json.loads(personify("insights", "show", "c35").output)
    assert refused["status"] == "not_allowed"  # no profiling consent (opt-in by default)

    export = json.loads(personify("privacy", "export", "c3").output)
    assert export["insights"]["profile"]["rfm"]["frequency"] == 4
    bad = personify("insights", "fit", "--as-of", "yesterday")
    assert bad.exit_code == 2 and "as_of" in bad.output
