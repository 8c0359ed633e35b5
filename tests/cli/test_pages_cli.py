"""``personify pages``: put / list / show / view / delete on a SQLite file, bad definitions
refused naming the field, and ``personify ope`` reading row clicks of page decisions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from typer.testing import CliRunner

from personify.cli import ope, pages
from personify.cli.context import CliState
from personify.cli.errors import USER_ERROR_EXIT, ErrorHandlingGroup
from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.events import Event
from personify.domain.items import Item
from personify.runtime.container import build_runtime
from personify.settings import Settings
from personify.storage.registry import open_stores


def _app(db: str) -> typer.Typer:
    app = typer.Typer(cls=ErrorHandlingGroup)

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = CliState(config_file=None, database_url=db)

    app.add_typer(pages.app, name="pages")
    ope.register(app)
    return app


def _seed(db: str) -> None:
    stores = open_stores(db)
    now = datetime.now(UTC)
    stores.catalog.upsert("default", [
        Item(item_id=f"i{i}", title=f"Book {i}", categories=["books"],
             created_at=now - timedelta(days=i)) for i in range(12)])
    stores.events.append("default", [
        Event(event_id=f"e{k}", type="view", user_id="ana", item_id=f"i{k}",
              timestamp=now - timedelta(minutes=30 - k)) for k in range(3)])
    for purpose in ("personalization", "profiling"):
        stores.consents.append("default", ConsentRecord(
            user_id="ana", purpose=purpose, state=ConsentState.GRANTED, source="test"))
    stores.close()


def test_put_list_show_view_delete(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    _seed(db)
    page = tmp_path / "shop.yaml"
    page.write_text("rows:\n  - {id: fresh, kind: new_for_you, n: 3,"
                    " title: {en: Fresh books}}\n  - {id: again, kind: continue}\n")
    app, runner = _app(db), CliRunner()
    got = runner.invoke(app, ["pages", "put", "shop", str(page)])
    assert got.exit_code == 0, got.output
    listed = runner.invoke(app, ["pages", "list"]).output
    assert listed.split() == ["home", "default", "shop", "stored"]
    shown = json.loads(runner.invoke(app, ["pages", "show", "shop"]).output)
    assert [r["id"] for r in shown["rows"]] == ["fresh", "again"]
    viewed = runner.invoke(app, ["pages", "view", "shop", "--user", "ana"])
    assert viewed.exit_code == 0, viewed.output
    assert "Fresh books" in viewed.output and "Continue where you left off" in viewed.output
    assert runner.invoke(app, ["pages", "delete", "shop"]).exit_code == 0
    missing = runner.invoke(app, ["pages", "show", "shop"])
    assert missing.exit_code == USER_ERROR_EXIT and "shop" in missing.output


def test_bad_definition_names_the_field(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": [{"id": "x", "kind": "custom", "sources": ["nope"]}]}))
    got = CliRunner().invoke(_app(db), ["pages", "put", "bad", str(bad)])
    assert got.exit_code == USER_ERROR_EXIT
    assert "rows.0.sources" in got.output


def test_ope_reads_row_clicks_of_page_decisions(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    _seed(db)
    runtime = build_runtime(Settings(database_url=db, model_dir=str(tmp_path / "m"),
                                     demo=False))
    try:
        shown = [runtime.pages.render("default", "home", user_id="ana") for _ in range(6)]
        clicks = [
            Event(event_id=f"c{k}", type="click", user_id="ana",
                  item_id=page.rows[0].items[0].item_id,
                  recommendation_id=page.rows[0].recommendation_id,
                  properties={"page_id": page.page_id, "row_id": page.rows[0].row_id},
                  timestamp=datetime.now(UTC))
            for k, page in enumerate(shown[:3])
        ]
        runtime.ingestor.ingest("default", clicks)
        learned = runtime.experiments.points.describe("default", "page:home")
        assert learned["updates"] == 3
    finally:
        runtime.close()
    got = CliRunner().invoke(_app(db), ["ope", "--format", "personify", "--point", "page:home"])
    assert got.exit_code == 0, got.output
    assert "6 decisions" in got.output
