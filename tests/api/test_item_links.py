"""Item links in messages: an item without ``properties.url`` is linked through the
``item_url_template`` setting, or else gets no link at all (never a made-up URL), and saving a
template that links items while the setting is missing says so at once (a warning header)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from personify.api import create_app
from personify.domain.keys import Scope
from personify.settings import Settings
from personify.storage.registry import Stores, open_stores

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

LINKED = {"name": "linked", "recommendations": 2, "variants": [{
    "subject": "Picks", "html": '{% for r in recommendations %}<a href="{{ r.url }}">'
    "{{ r.title }}</a>{% endfor %}", "text": "{% for r in recommendations %}{{ r.url }} "
    "{% endfor %}"}]}
PLAIN = {"name": "plain", "recommendations": 0, "variants": [{"subject": "Hi", "text": "hi"}]}


@pytest.fixture
def stores() -> Iterator[Stores]:
    opened = open_stores("memory://")
    yield opened
    opened.close()


def _client(stores: Stores, **settings: str) -> tuple[TestClient, dict[str, str]]:
    _key, secret = stores.keys.create("default", "admin", [Scope.ADMIN])
    app = create_app(Settings(database_url="memory://", **settings), stores=stores)  # type: ignore[arg-type]
    client = TestClient(app)
    client.__enter__()
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.put("/v1/users/ann", json={"profile": {"name": "Ann"}},
                      headers=headers).status_code == 200
    for k in range(2):  # items without properties.url, viewed so that they are recommended
        assert client.put(f"/v1/items/i{k}", json={"title": f"Lamp {k}"},
                          headers=headers).status_code == 200
    return client, headers


def test_the_setting_is_checked_naming_it() -> None:
    for bad in ("shop.example/{item_id}", "https://shop.example/p/"):
        with pytest.raises(ValidationError, match="PERSONIFY_ITEM_URL_TEMPLATE"):
            Settings(item_url_template=bad)
    assert Settings(item_url_template="").item_url_template is None


def test_without_the_setting_items_get_no_link_and_the_template_save_says_so(
    stores: Stores,
) -> None:
    client, headers = _client(stores)
    saved = client.put("/v1/messaging/templates/linked", json=LINKED, headers=headers)
    assert saved.status_code == 200
    assert "item_url_template" in saved.headers["X-Personify-Warning"]
    plain = client.put("/v1/messaging/templates/plain", json=PLAIN, headers=headers)
    assert "X-Personify-Warning" not in plain.headers
    shown = client.post("/v1/messaging/templates/linked/preview", json={"user_id": "ann"},
                        headers=headers).json()
    assert shown["recommendations"], shown
    assert "example.invalid" not in shown["html"] + shown["text"]
    assert 'href=""' in shown["html"] and "Lamp" in shown["html"]
    client.__exit__(None, None, None)


def test_with_the_setting_items_link_to_the_shop(stores: Stores) -> None:
    client, headers = _client(stores, item_url_template="https://shop.example/p/{item_id}")
    saved = client.put("/v1/messaging/templates/linked", json=LINKED, headers=headers)
    assert saved.status_code == 200 and "X-Personify-Warning" not in saved.headers
    shown = client.post("/v1/messaging/templates/linked/preview", json={"user_id": "ann"},
                        headers=headers).json()
    assert shown["recommendations"], shown
    for item_id in shown["recommendations"]:
        assert f'href="https://shop.example/p/{item_id}"' in shown["html"]
    client.__exit__(None, None, None)
