"""Segments page: each segment with its rule and members now, and the stored counts over time
drawn as a chart (with its numbers), in English and Russian."""

from __future__ import annotations

import json
import re

from fastapi import FastAPI

from personify.insights.segments import SegmentIn

from .conftest import TestClient
from .shop import TENANT


def test_segments_page_lists_rules_members_and_counts_over_time(
    app: FastAPI, client: TestClient,
) -> None:
    empty = client.get("/dashboard/segments")
    assert empty.status_code == 200 and "No segments yet" in empty.text
    assert 'href="/dashboard/segments"' in empty.text, "the page is in the navigation"
    service = app.state.runtime.insights
    tracker = service.tracker
    tracker.files.put(TENANT, "buyers", SegmentIn(name="Buyers", text="frequency >= 1"))
    users = [u.user_id for u in app.state.runtime.stores.users.list(TENANT, limit=1000)]
    inside = [u for u in users if "buyers" in service.refresh(TENANT, u)]
    assert inside, "the shop has buyers"
    tracker.snapshot(TENANT)
    page = client.get("/dashboard/segments")
    assert page.status_code == 200
    row = re.search(r'<tr data-segment-id="buyers">(.*?)</tr>', page.text, re.S)
    assert row is not None and "frequency &gt;= 1" in row.group(1)
    assert f'<td class="num">{len(inside)}</td>' in row.group(1)
    charts = re.findall(r'data-chart="([^"]+)"', page.text)
    assert charts, "the counts are drawn"
    payload = json.loads(charts[0].replace("&#34;", '"').replace("&quot;", '"'))
    assert payload["time"] and payload["series"][0]["name"] == "buyers"
    assert payload["series"][0]["values"][-1] == len(inside)
    client.get("/dashboard/lang/ru?next=/dashboard/segments")
    russian = client.get("/dashboard/segments")
    assert russian.status_code == 200 and "Участники по времени" in russian.text
    assert client.get("/dashboard/segments?days=0").status_code == 422
