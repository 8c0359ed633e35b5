"""Weather as request context from a provider speaking Open-Meteo's API (``weather_provider =
"open-meteo"``): a request whose context has coordinates (``context.location.latitude`` /
``longitude``) and no ``context.weather`` gets the current weather there, so boosts' ``when``
conditions, the logged impressions and the ranker's weather features see it as if the client
had sent it.

Coordinates are rounded to two decimals (about 1 km) before they leave the process; answers are
cached per rounded location and UTC hour of the injected clock, a failing provider is not asked
again for that location for ``backoff`` (a timeout never fails a recommendation: it is then
served without weather). The base URL is a setting (``weather_url``), so tests and air-gapped
installations point it at their own server; nothing is fetched unless the provider is
configured.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import ValidationError

from personify.domain.events import Context, Weather, WeatherCondition

log = logging.getLogger(__name__)

CURRENT_FIELDS = "temperature_2m,precipitation,weather_code,wind_speed_10m"
"""The ``current`` variables asked of Open-Meteo's ``/v1/forecast``."""


def condition_of(code: int | None) -> WeatherCondition | None:
    """The condition of a WMO weather interpretation code (Open-Meteo's ``weather_code``)."""
    if code is None:
        return None
    if code in (0, 1):
        return "clear"
    if code in (2, 3):
        return "clouds"
    if code in (45, 48):
        return "fog"
    if 51 <= code <= 57:
        return "drizzle"
    if 61 <= code <= 67 or 80 <= code <= 82:
        return "rain"
    if 71 <= code <= 77 or code in (85, 86):
        return "snow"
    if 95 <= code <= 99:
        return "thunderstorm"
    return None


def parse_current(body: Any) -> Weather:
    """``Weather`` from an Open-Meteo ``/v1/forecast?current=...`` answer; ``ValueError`` when
    the answer is not of that shape or out of range."""
    current = body.get("current") if isinstance(body, dict) else None
    if not isinstance(current, dict):
        raise ValueError("no 'current' object in the answer")

    def number(name: str) -> float | None:
        value = current.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"current.{name} is not a number")
        return float(value)

    code = number("weather_code")
    try:
        return Weather(
            condition=condition_of(int(code)) if code is not None else None,
            temperature_c=number("temperature_2m"),
            precipitation_mm=number("precipitation"),
            wind_kmh=number("wind_speed_10m"),
        )
    except ValidationError as exc:
        raise ValueError(f"weather out of range: {exc.errors()[0]['msg']}") from exc


Key = tuple[float, float]


class OpenMeteoWeather:
    """Current weather per location, cached per UTC hour; thread-safe."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        backoff: timedelta = timedelta(minutes=5),
        max_entries: int = 10_000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.clock = clock
        self.backoff = backoff
        self.max_entries = max_entries
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout,
                                    transport=transport, follow_redirects=False)
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[float, float, datetime], Weather] = OrderedDict()
        self._failed: dict[Key, datetime] = {}
        self.fetches = 0
        """Requests sent to the provider (tests and metrics read it)."""

    @staticmethod
    def place(context: Context) -> Key | None:
        """The rounded coordinates of a context that has some and no weather yet."""
        location = context.location
        if context.weather is not None or location is None:
            return None
        if location.latitude is None or location.longitude is None:
            return None
        return round(location.latitude, 2), round(location.longitude, 2)

    def _hour(self) -> datetime:
        return self.clock().astimezone(UTC).replace(minute=0, second=0, microsecond=0)

    def cached(self, place: Key) -> Weather | None:
        with self._lock:
            return self._cache.get((*place, self._hour()))

    def needs_fetch(self, context: Context) -> bool:
        """Whether :meth:`enrich` would ask the provider (so an async caller can do it off the
        event loop first)."""
        place = self.place(context)
        if place is None or self.cached(place) is not None:
            return False
        with self._lock:
            until = self._failed.get(place)
        return until is None or self.clock() >= until

    def current(self, place: Key) -> Weather | None:
        """The weather at ``place`` this hour (cached), or None when the provider failed."""
        hit = self.cached(place)
        if hit is not None:
            return hit
        now = self.clock()
        with self._lock:
            until = self._failed.get(place)
        if until is not None and now < until:
            return None
        try:
            weather = self._fetch(place)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("weather provider %s failed: %s", self.base_url, exc)
            with self._lock:
                self._failed[place] = now + self.backoff
            return None
        hour = self._hour()
        with self._lock:
            self._failed.pop(place, None)
            self._cache[(*place, hour)] = weather
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return weather

    def _fetch(self, place: Key) -> Weather:
        self.fetches += 1
        response = self._client.get("/v1/forecast", params={
            "latitude": f"{place[0]:.2f}", "longitude": f"{place[1]:.2f}",
            "current": CURRENT_FIELDS, "wind_speed_unit": "kmh", "timezone": "GMT",
        })
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise ValueError("the answer is not JSON") from exc
        return parse_current(body)

    def enrich(self, context: Context) -> Context:
        """``context`` with the weather at its coordinates (unchanged without coordinates,
        with the client's own weather, or when the provider fails)."""
        place = self.place(context)
        if place is None:
            return context
        weather = self.current(place)
        return context if weather is None else context.model_copy(update={"weather": weather})

    def close(self) -> None:
        self._client.close()
