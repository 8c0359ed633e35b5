"""The Python client covers the public API: every route of the OpenAPI document has a method
on both clients (one :class:`~personify.client._calls.Endpoint` each), or is listed in
``NOT_IN_CLIENT`` with the reason it is not. A new route without a client method fails here."""

from __future__ import annotations

import asyncio
import inspect
import re
from typing import Any

import httpx
import pytest

from personify.api import create_app
from personify.client import AsyncPersonifyClient, PersonifyClient
from personify.client._calls import Endpoint, Endpoints
from personify.domain.errors import PersonifyError
from personify.settings import Settings

NOT_IN_CLIENT: dict[tuple[str, str], str] = {
    ("GET", "/metrics"): "Prometheus scrapes it; an application has no use for it",
    **{("POST", f"/segment/v1/{kind}"): "Segment's own libraries and destinations post here; "
       "Python code sends events with track / send_events"
       for kind in ("batch", "track", "identify", "page", "screen", "alias", "group")},
    ("GET", "/t/o/{token}"): "open pixel, fetched by the recipient's mail client",
    ("GET", "/t/c/{token}"): "click redirect, followed by the recipient from a message",
    ("GET", "/u/{token}"): "unsubscribe page, opened by the recipient from a message",
    ("POST", "/u/{token}"): "one-click unsubscribe (RFC 8058), posted by the mail client",
    ("POST", "/v1/browser/identify"): "the web snippet's login call with a browser key; "
    "server code merges ids with add_alias",
    ("POST", "/v1/events/beacon"): "navigator.sendBeacon batches of the web snippet; "
    "server code sends events with send_events",
}


def server_routes() -> set[tuple[str, str]]:
    app = create_app(Settings(database_url="memory://", admin_key="k" * 32))
    return {(method.upper(), path) for path, ops in app.openapi()["paths"].items()
            for method in ops}


def client_routes() -> dict[tuple[str, str], list[str]]:
    routes: dict[tuple[str, str], list[str]] = {}
    for name, value in vars(Endpoints).items():
        if isinstance(value, Endpoint):
            routes.setdefault((value.method, value.route), []).append(name)
    return routes


def test_every_route_has_a_client_method_or_a_reason() -> None:
    server, client = server_routes(), client_routes()
    missing = server - set(client) - set(NOT_IN_CLIENT)
    assert not missing, (
        f"routes without a client method: {sorted(missing)}; add an @endpoint to "
        "personify/client/_calls.py (and to Endpoints), or a reason to NOT_IN_CLIENT"
    )
    assert not set(client) - server, f"client methods for no route: {set(client) - server}"
    assert not set(NOT_IN_CLIENT) & set(client), "a route is both in the client and excluded"
    assert not set(NOT_IN_CLIENT) - server, "NOT_IN_CLIENT names a route that is gone"
    assert all(len(reason) > 20 for reason in NOT_IN_CLIENT.values())


def test_every_endpoint_of_the_call_layer_is_a_method_of_both_clients() -> None:
    from personify.client import _calls

    defined = {name for name, value in vars(_calls).items() if isinstance(value, Endpoint)}
    listed = {name for name, value in vars(Endpoints).items() if isinstance(value, Endpoint)}
    assert defined == listed
    for name in listed:
        assert vars(Endpoints)[name] is vars(_calls)[name], name
        assert vars(Endpoints)[name].__doc__, f"{name} has no documentation"
        for cls in (PersonifyClient, AsyncPersonifyClient):
            method = getattr(cls(base_url="http://x", api_key="k"), name)
            assert inspect.signature(getattr(cls, name)) == inspect.signature(method), name
            assert inspect.iscoroutinefunction(method) is (cls is AsyncPersonifyClient), name


def _sample(parameter: inspect.Parameter) -> Any:
    """An argument of the parameter's annotated type (the annotations are strings)."""
    annotation = str(parameter.annotation)
    if annotation.startswith(("str", "str |")):
        return "a b/c"
    if annotation.startswith(("User |", "Item |", "Event |", "Mapping", "UserPatch",
                              "ItemPatch", "Preferences")):
        return {"user_id": "a b/c", "item_id": "a b/c", "event_id": "e"}
    if annotation.startswith(("Sequence[str]", "Iterable[Scope | str]")):
        return ["admin"]
    if annotation.startswith(("Sequence", "Iterable")):
        return [{"item_id": "a b/c", "user_id": "a b/c", "event_id": "e"}]
    raise AssertionError(f"no sample for {parameter}")


def _arguments(endpoint: Endpoint[Any, Any]) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for parameter in inspect.signature(endpoint.build).parameters.values():
        if (parameter.default is not inspect.Parameter.empty
                and parameter.name not in endpoint.path_args):
            continue
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            kwargs[parameter.name] = _sample(parameter)
        else:
            args.append(_sample(parameter))
    return args, kwargs


@pytest.mark.parametrize("name", sorted(n for n, v in vars(Endpoints).items()
                                        if isinstance(v, Endpoint)))
def test_sync_and_async_methods_send_the_declared_route(name: str) -> None:
    """Both clients send the same request to the route the endpoint declares, with path
    parameters escaped (an id with a space and a slash stays one path segment)."""
    endpoint: Endpoint[Any, Any] = vars(Endpoints)[name]
    args, kwargs = _arguments(endpoint)
    seen: list[tuple[str, str, bytes]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.raw_path.decode(), request.content))
        return httpx.Response(418, json={"error": {"code": "teapot", "message": "no"}})

    with PersonifyClient("http://x", "k", retries=0, transport=httpx.MockTransport(answer)) \
            as client, pytest.raises(PersonifyError, match=r"^no$"):
        getattr(client, name)(*args, **kwargs)

    async def run() -> None:
        async with AsyncPersonifyClient("http://x", "k", retries=0,
                                        transport=httpx.MockTransport(answer)) as client:
            with pytest.raises(PersonifyError, match=r"^no$"):
                await getattr(client, name)(*args, **kwargs)

    asyncio.run(run())
    assert len(seen) == 2 and seen[0] == seen[1]
    method, path, _ = seen[0]
    assert method == endpoint.method
    pattern = endpoint.route
    for arg in endpoint.path_args:
        pattern = pattern.replace("{" + arg + "}", "a%20b%2Fc")
    assert path.split("?")[0] == pattern


def test_the_reference_table_in_docs_lists_every_method_and_its_route() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("## Python client", 1)[1].split("\n## ", 1)[0]
    documented = dict(re.findall(r"^\| `(\w+)` \| `([A-Z]+ \S+)` \|", section, re.M))
    declared = {name: f"{value.method} {value.route}" for name, value in vars(Endpoints).items()
                if isinstance(value, Endpoint)}
    assert documented == declared
