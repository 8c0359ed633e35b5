"""The Open-Meteo weather provider against a local fake of its API (never the network): the
answer's format, rounding of the coordinates sent, one request per place and hour of the
injected clock, a timeout or a broken answer serving without weather (and not asking again for
a while), and the served path: a request with coordinates gets the weather, boosts' ``when``
see it, the logged impression carries it for the ranker; the client's own weather wins."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from personify.api import create_app
from personify.domain.events import Context, Location, Weather
from personify.runtime.weather import OpenMeteoWeather, condition_of, parse_current
from personify.settings import Settings
from personify.storage.registry import Stores

if TYPE_CHECKING:
    from conftest import TenantKeys

RAIN = {"latitude": 52.52, "longitude": 13.42, "current_units": {"temperature_2m": "°C"},
        "current": {"time": "2026-12-07T18:00", "interval": 900, "temperature_2m": 6.5,
                    "precipitation": 1.2, "weather_code": 63, "wind_speed_10m": 14.0}}


class FakeOpenMeteo:
    """``/v1/forecast`` answering ``body`` (after ``delay`` seconds, with ``status``); records
    every query."""

    def __init__(self) -> None:
        self.body: Any = RAIN
        self.status = 200
        self.delay = 0.0
        self.queries: list[dict[str, list[str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                fake.queries.append({"path": [url.path], **parse_qs(url.query)})
                if fake.delay:
                    time.sleep(fake.delay)
                raw = fake.body if isinstance(fake.body, bytes) else json.dumps(fake.body).encode()
                try:
                    self.send_response(fake.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:  # the client gave up (timeout)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeOpenMeteo]:
    server = FakeOpenMeteo()
    yield server
    server.close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 18, 10, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _at(lat: float, lon: float, **extra: Any) -> Context:
    return Context(location=Location(latitude=lat, longitude=lon), **extra)


def test_open_meteo_answers_become_weather() -> None:
    assert parse_current(RAIN) == Weather(condition="rain", temperature_c=6.5,
                                          precipitation_mm=1.2, wind_kmh=14.0)
    assert [condition_of(c) for c in (0, 3, 45, 53, 81, 75, 95, 42)] == [
        "clear", "clouds", "fog", "drizzle", "rain", "snow", "thunderstorm", None]
    for broken in ({}, {"current": []}, {"current": {"temperature_2m": "warm"}},
                   {"current": {"temperature_2m": 900}}):
        with pytest.raises(ValueError):
            parse_current(broken)


def test_one_request_per_place_and_hour(fake: FakeOpenMeteo) -> None:
    clock = Clock()
    weather = OpenMeteoWeather(fake.url, clock=clock)
    try:
        first = weather.enrich(_at(52.520008, 13.404954))
        assert first.weather is not None and first.weather.condition == "rain"
        [query] = fake.queries
        assert query["path"] == ["/v1/forecast"]
        assert (query["latitude"], query["longitude"]) == (["52.52"], ["13.40"])
        assert query["current"] == ["temperature_2m,precipitation,weather_code,wind_speed_10m"]
        clock.now += timedelta(minutes=40)  # 18:50: the same hour, ~300 m away
        assert weather.enrich(_at(52.5211, 13.4012)).weather == first.weather
        assert len(fake.queries) == 1
        fake.body = {"current": {"weather_code": 0, "temperature_2m": 8.0}}
        assert weather.enrich(_at(48.14, 11.58)).weather == Weather(
            condition="clear", temperature_c=8.0)
        clock.now += timedelta(minutes=15)  # 19:05: a new hour asks again
        assert weather.enrich(_at(52.52, 13.40)).weather == Weather(
            condition="clear", temperature_c=8.0)
        assert len(fake.queries) == 3
        own = _at(52.52, 13.40, weather=Weather(condition="snow"))
        assert weather.enrich(own) is own, "the client's own weather is kept"
        no_place = Context(location=Location(country="DE"))
        assert weather.enrich(no_place) is no_place and len(fake.queries) == 3
    finally:
        weather.close()


def test_a_slow_or_broken_provider_serves_without_weather(fake: FakeOpenMeteo) -> None:
    clock = Clock()
    weather = OpenMeteoWeather(fake.url, timeout=0.2, clock=clock)
    try:
        fake.delay = 1.0
        started = time.perf_counter()
        context = _at(52.52, 13.40)
        assert weather.enrich(context) is context
        assert time.perf_counter() - started < 0.9
        fake.delay = 0.0
        assert weather.enrich(context) is context and len(fake.queries) == 1, "backing off"
        assert not weather.needs_fetch(context)
        clock.now += timedelta(minutes=6)
        assert weather.needs_fetch(context)
        assert weather.enrich(context).weather is not None
        for status, body in ((500, RAIN), (200, b"<html>not json"), (200, {"hourly": {}})):
            fake.status, fake.body = status, body
            clock.now += timedelta(hours=1)
            assert weather.enrich(context) is context, (status, body)
    finally:
        weather.close()


def test_the_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="weather_url"):
        Settings(weather_url="ftp://weather.example")
    with pytest.raises(ValidationError, match="weather_timeout_seconds"):
        Settings(weather_timeout_seconds=0)
    with pytest.raises(ValidationError, match="weather_provider"):
        Settings(weather_provider="darksky")


def test_a_request_with_coordinates_is_served_with_the_weather(
    fake: FakeOpenMeteo, stores: Stores, tenant_a: TenantKeys, tenant_b: TenantKeys
) -> None:
    settings = Settings(database_url="memory://", demo=False, weather_provider="open-meteo",
                        weather_url=fake.url)
    with TestClient(create_app(settings, stores=stores)) as client:
        for i in range(6):
            body = {"title": f"Item {i}", "categories": ["umbrellas" if i < 3 else "sunglasses"]}
            assert client.put(f"/v1/items/i{i}", json=body,
                              headers=tenant_a.headers("admin")).status_code == 200
        rainy = {"condition": {"field": "categories", "op": "contains", "value": "umbrellas"},
                 "factor": 100, "when": [{"field": "weather.condition", "value": "rain"}]}
        sunny = {**rainy, "condition": {**rainy["condition"], "value": "sunglasses"},
                 "when": [{"field": "weather.condition", "value": "clear"}]}
        request = {"n": 3, "anonymous_id": "v1", "rules": {"boosts": [rainy, sunny]},
                   "context": {"location": {"latitude": 52.52, "longitude": 13.40}}}
        h = tenant_a.headers("serve")
        r = client.post("/v1/recommendations", headers=h, json=request)
        assert r.status_code == 200, r.text
        assert {i["item_id"] for i in r.json()["items"]} == {"i0", "i1", "i2"}
        assert len(fake.queries) == 1
        own = {**request, "context": {**request["context"], "weather": {"condition": "clear"}}}
        r = client.post("/v1/recommendations", headers=h, json=own)
        assert {i["item_id"] for i in r.json()["items"]} == {"i3", "i4", "i5"}
        assert len(fake.queries) == 1
        client.app.state.runtime.engine.impressions.flush()
        logged = [e for e in stores.events.for_anonymous("default", "v1", limit=10)
                  if e.type == "impression"]
        weathers = sorted(str(e.context.weather.condition) for e in logged if e.context.weather)
        assert weathers == ["clear", "rain"], "impressions carry the weather the ranker reads"
