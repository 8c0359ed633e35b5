"""Overview, Models, Experiments, Messaging and Settings pages."""

from __future__ import annotations

import html
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI

from personify.dashboard.evaluation_results import read_results
from personify.experiments.ports import ExposureRecord
from personify.storage.registry import Stores

from .conftest import TestClient, csrf_of
from .shop import TENANT, train_shop_model


def panel(client: TestClient, path: str) -> str:
    """A progressive panel, asked again while it still says it is computing."""
    deadline = time.monotonic() + 20
    while True:
        text = client.get(path).text
        if "panel-pending" not in text:
            return text
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_overview_shows_counts_model_and_charts(app: FastAPI, client: TestClient,
                                                shop_stores: Stores) -> None:
    page = client.get("/dashboard/")
    assert page.status_code == 200
    version = app.state.runtime.engine.bundles.get(TENANT).version
    assert version in page.text
    assert f'<div class="card-value">{shop_stores.events.count(TENANT):,}</div>' in page.text
    body = panel(client, "/dashboard/panels/overview")
    charts = re.findall(r'data-chart="([^"]+)"', body)
    assert len(charts) == 6
    spec = json.loads(charts[2].replace("&#34;", '"').replace("&quot;", '"'))
    assert spec["id"] == "ctr-per-day" and spec["series"][0]["percent"]
    assert body.count("<details class=\"numbers\">") == 6  # every chart has its numbers
    assert "CTR by channel" in body and "<td>app</td>" in body


def test_models_promote_and_rollback(app: FastAPI, client: TestClient, shop_stores: Stores,
                                     tmp_path: Path) -> None:
    first = app.state.runtime.engine.bundles.get(TENANT).version
    second = train_shop_model(shop_stores, Path(app.state.runtime.engine.models.root)).version
    page = client.get("/dashboard/models")
    assert first in page.text and second in page.text
    token = csrf_of(client, "/dashboard/models")
    rolled = client.post("/dashboard/models/rollback", data={"csrf_token": token})
    assert rolled.status_code == 200 and f"version {first} is served" in rolled.text
    assert app.state.runtime.engine.bundles.get(TENANT).version == first
    promoted = client.post(f"/dashboard/models/{second}/promote", data={"csrf_token": token})
    assert promoted.status_code == 200
    assert app.state.runtime.engine.bundles.get(TENANT).version == second
    missing = client.post("/dashboard/models/nope/promote", data={"csrf_token": token})
    assert missing.status_code == 404


def test_offline_evaluation_results(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "quality.json").write_text(json.dumps({
        "name": "quality", "date": "2024-06-01",
        "metrics": {"discovery": {"ease": {"ndcg@20": 0.06, "recall@20": 0.04, "note": "x"},
                                  "popularity": {"ndcg@20": 0.03, "recall@20": 0.02}}},
    }))
    (folder / "broken.json").write_text("{not json")
    (folder / "flat.json").write_text(json.dumps({"name": "flat", "metrics": {"a": 1}}))
    files = read_results(folder)
    assert [f.name for f in files] == ["quality"]
    table = files[0].tables[0]
    assert table.title == "discovery" and table.columns == ["ndcg@20", "recall@20"]
    assert table.rows == [("ease", [0.06, 0.04]), ("popularity", [0.03, 0.02])]
    assert read_results(tmp_path / "missing") == []


def test_evaluation_panel_draws_a_chart_per_table(app: FastAPI, client: TestClient,
                                                  tmp_path: Path) -> None:
    folder = tmp_path / "res"
    folder.mkdir()
    (folder / "q.json").write_text(json.dumps({"name": "q", "metrics": {
        "a": {"m1": {"x": 1, "y": 2}, "m2": {"x": 3, "y": 4}}}}))
    app.state.dashboard.results_dir = folder
    body = client.get("/dashboard/panels/evaluation").text
    assert body.count("data-chart=") == 1 and "m2" in body


def create_experiment(client: TestClient, name: str, **extra: str) -> object:
    data = {"name": name, "hypothesis": "ease beats popularity", "variants": "control, ease",
            "primary_metric": "conversion", "traffic": "50", "holdout": "0",
            "planned_sample_size": "100", "csrf_token": csrf_of(client, "/dashboard/experiments"),
            **extra}
    return client.post("/dashboard/experiments", data=data, follow_redirects=False)


def test_experiment_lifecycle(client: TestClient) -> None:
    created = create_experiment(client, "home-ease", guardrails="revenue")
    assert created.status_code == 303  # type: ignore[attr-defined]
    page = client.get("/dashboard/experiments/home-ease")
    assert "ease beats popularity" in page.text and "draft" in page.text
    token = csrf_of(client, "/dashboard/experiments/home-ease")
    client.post("/dashboard/experiments/home-ease/start", data={"csrf_token": token})
    running = client.get("/dashboard/experiments/home-ease")
    assert "running" in running.text and "buckets 0–5000" in running.text
    assert "No exposed units yet" in client.get("/dashboard/panels/experiments/home-ease").text
    again = client.post("/dashboard/experiments/home-ease/start", data={"csrf_token": token})
    assert again.status_code == 409 and "is running" in again.text
    client.post("/dashboard/experiments/home-ease/stop", data={"csrf_token": token})
    assert "stopped" in client.get("/dashboard/experiments/home-ease").text
    assert "home-ease" in client.get("/dashboard/experiments").text


def test_experiment_form_errors_name_the_field(client: TestClient) -> None:
    duplicate = create_experiment(client, "dup")
    assert duplicate.status_code == 303  # type: ignore[attr-defined]
    again = create_experiment(client, "dup")
    assert again.status_code == 400 and "already exists" in again.text  # type: ignore[attr-defined]
    one_variant = create_experiment(client, "solo", variants="control")
    assert one_variant.status_code == 400  # type: ignore[attr-defined]
    assert "variants" in one_variant.text  # type: ignore[attr-defined]
    no_horizon = create_experiment(client, "open", planned_sample_size="")
    assert "planned_sample_size" in no_horizon.text  # type: ignore[attr-defined]


def test_experiment_results_with_intervals_lift_and_verdict(app: FastAPI, client: TestClient,
                                                            shop_stores: Stores) -> None:
    create_experiment(client, "exposed")
    token = csrf_of(client, "/dashboard/experiments/exposed")
    client.post("/dashboard/experiments/exposed/start", data={"csrf_token": token})
    log = app.state.dashboard.exposures
    start = datetime.now(UTC) - timedelta(days=11)
    for u in range(30):
        log.record(TENANT, ExposureRecord("exposed", "control" if u % 2 else "ease",
                                          f"user:u{u:02d}", start))
    body = client.get("/dashboard/panels/experiments/exposed").text
    assert 'data-testid="verdict"' in body
    assert "<svg" in body and "Relative lift" in body
    assert body.count("<tr><td>conversion</td>") == 1
    assert "…" in body  # an interval


def test_message_preview_for_a_person(client: TestClient) -> None:
    page = client.get("/dashboard/messaging?template=weekly_picks&user=u03")
    assert page.status_code == 200
    source = re.search(r'<textarea id="template-yaml" name="template_yaml"[^>]*>(.*?)</textarea>',
                       page.text, re.S)
    assert source is not None
    yaml_text = html.unescape(source.group(1))
    token = csrf_of(client, "/dashboard/messaging")
    russian = client.post("/dashboard/messaging/preview",
                          data={"template_yaml": yaml_text, "user_id": "u03"},
                          headers={"X-CSRF-Token": token})
    assert russian.status_code == 200
    assert "Customer 3, 4 товара для вас" in russian.text  # u03 reads Russian: CLDR plural
    assert 'sandbox title=' in russian.text
    english = client.post("/dashboard/messaging/preview",
                          data={"template_yaml": yaml_text, "user_id": "u01"},
                          headers={"X-CSRF-Token": token})
    assert "Customer 1, 4 picks for you this week" in english.text
    broken = client.post("/dashboard/messaging/preview",
                         data={"template_yaml": yaml_text.replace("Picked for you:", "{{ nme }}"),
                               "user_id": "u01"}, headers={"X-CSRF-Token": token})
    assert 'data-testid="preview-error"' in broken.text and "nme" in broken.text


def test_saving_a_template(client: TestClient, app: FastAPI) -> None:
    token = csrf_of(client, "/dashboard/messaging")
    yaml_text = ("name: hello\nchannel: email\nvariants:\n  - language: en\n"
                 "    subject: 'Hi {{ user.name }}'\n")
    saved = client.post("/dashboard/messaging/templates",
                        data={"template_yaml": yaml_text, "user_id": "u01", "csrf_token": token},
                        follow_redirects=False)
    assert saved.status_code == 303
    assert "hello" in app.state.dashboard.templates
    bad = client.post("/dashboard/messaging/templates",
                      data={"template_yaml": "name: [", "csrf_token": token})
    assert bad.status_code == 400


def test_api_keys_secret_shown_once_and_revocation(client: TestClient,
                                                   shop_stores: Stores) -> None:
    token = csrf_of(client)
    created = client.post("/dashboard/settings/keys",
                          data={"name": "shop front", "scopes": ["ingest", "serve"],
                                "csrf_token": token})
    assert created.status_code == 200
    secret = re.search(r'<p class="secret">([^<]+)</p>', created.text)
    assert secret is not None
    key = shop_stores.keys.verify(secret.group(1))
    assert key is not None and {s.value for s in key.scopes} == {"ingest", "serve"}
    listing = client.get("/dashboard/settings").text
    assert "shop front" in listing and secret.group(1) not in listing
    revoked = client.post(f"/dashboard/settings/keys/{key.key_id}/revoke",
                          data={"csrf_token": token})
    assert "Key revoked" in revoked.text
    assert shop_stores.keys.verify(secret.group(1)) is None
    none = client.post("/dashboard/settings/keys", data={"name": "", "csrf_token": token})
    assert none.status_code == 400
    foreign, _ = shop_stores.keys.create("other", "theirs", [])
    assert client.post(f"/dashboard/settings/keys/{foreign.key_id}/revoke",
                       data={"csrf_token": token}).status_code == 404
    assert "personalization" in listing and "Retention" in listing


def test_models_page_shows_the_configuration_choice(app: FastAPI, client: TestClient,
                                                    shop_stores: Stores) -> None:
    import pytest

    pytest.importorskip("optuna")
    from personify.jobs.selection import SelectionPlan
    from personify.jobs.training import TrainingConfig, train_tenant
    from personify.storage.model_files import FileModelStore

    manifest = train_tenant(
        shop_stores.events, FileModelStore(Path(app.state.runtime.engine.models.root)), TENANT,
        TrainingConfig(learn_blend=False, train_ranker=False, factors=None),
        configure=SelectionPlan(budget_seconds=2.0).configure,
    )
    record = manifest.metrics["selection"]
    page = client.get("/dashboard/models").text
    assert f"Configuration choice of {manifest.version}" in page
    assert record["protocol"] in page and "one-standard-error" in page
    assert page.count("<tr><td>") >= len(record["trials"])
    assert '<span class="badge ok">chosen</span>' in page
