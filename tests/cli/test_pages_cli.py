"""``personify pages``: put / list / show / view / delete on a SQLite file, bad definitions
refused naming the field, and ``personify ope`` reading row clicks of page decisions (and
leaving out, as live learning does, the decisions whose first row was never seen)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from personify.cli import ope, pages
from personify.cli.context import CliState
from personify.cli.errors import USER_ERROR_EXIT, ErrorHandlingGroup
from personify.cli.ope import decisions_to_bandit_log
from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.events import Event
from personify.domain.items import Item
from personify.experiments.bandits import DecisionLog
from personify.experiments.ope import ActionMeanReward, evaluate_policy
from personify.runtime.container import build_runtime
from personify.settings import Settings
from personify.storage.registry import open_stores
from personify.storage.sql.experiments import SqlDecisionLogStore


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


def test_ope_leaves_out_page_decisions_whose_first_row_was_never_seen(tmp_path: Path) -> None:
    """Six pages served with ``impressions=reported``: two whose first row was seen and
    clicked, two seen and not clicked, two never seen. OPE's estimate is the one over the four
    seen only (before, the unseen two counted as unclicked rounds and pulled it down)."""
    db = f"sqlite:///{tmp_path / 'p.db'}"
    _seed(db)
    runtime = build_runtime(Settings(database_url=db, model_dir=str(tmp_path / "m"),
                                     demo=False))
    try:
        shown = [runtime.pages.render("default", "home", user_id="ana", impressions="reported")
                 for _ in range(6)]
        now = datetime.now(UTC)

        def on_row(kind: str, k: int) -> Event:
            page = shown[k]
            row = page.rows[0]
            return Event(event_id=f"{kind}{k}", type=kind, user_id="ana",
                         item_id=row.items[0].item_id if kind == "click" else None,
                         item_ids=[i.item_id for i in row.items] if kind != "click" else [],
                         recommendation_id=row.recommendation_id,
                         properties={"page_id": page.page_id, "row_id": row.row_id},
                         timestamp=now)

        runtime.ingestor.ingest("default", [on_row("impression", k) for k in range(4)]
                                + [on_row("click", k) for k in range(2)])
    finally:
        runtime.close()
    stores = open_stores(db)
    assert stores.database is not None
    logged = {d.decision_id: d for d in SqlDecisionLogStore(
        stores.database, DecisionLog.from_dict).scan("default", policy="page:home")}
    stores.close()
    assert len(logged) == 6 and all(d.seen_only for d in logged.values())
    seen_ids = {p.page_id for p in shown[:4]}
    seen = [d for d in logged.values() if d.decision_id in seen_ids]  # the log's order
    rewards = {p.page_id: {p.rows[0].row_id: 1.0} for p in shown[:2]}
    expected = {e.estimator: e.value for e in evaluate_policy(
        *decisions_to_bandit_log(seen, rewards), make_model=ActionMeanReward,
        estimators=("ips", "snips", "dm", "dr"), dm_bootstrap=0)}
    out = tmp_path / "ope.json"
    got = CliRunner().invoke(_app(db), ["ope", "--format", "personify", "--point", "page:home",
                                        "--dm-bootstrap", "0", "--out", str(out)])
    assert got.exit_code == 0, got.output
    assert "4 decisions" in got.output and "2 never seen left out" in got.output
    rows = {r["estimator"]: r for r in json.loads(out.read_text())}
    assert rows["ips"]["n_rounds"] == 4
    for name, value in expected.items():
        assert rows[name]["value"] == pytest.approx(value), name
    # with the unseen two read as unclicked rounds the estimate would have been lower
    everything = {e.estimator: e.value for e in evaluate_policy(
        *decisions_to_bandit_log(list(logged.values()), rewards), make_model=ActionMeanReward,
        estimators=("ips",), dm_bootstrap=0)}
    assert everything["ips"] < rows["ips"]["value"]
