"""Authentication of the dashboard: nothing is reachable without a session, sessions come from
admin keys only, cookies are locked down, and every state-changing request needs the CSRF token."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from personify.dashboard.mount import ROUTERS
from personify.dashboard.sessions import COOKIE_NAME
from personify.domain.keys import Scope
from personify.storage.registry import Stores

from .conftest import CSRF_RE, TestClient, csrf_of, login


def dashboard_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) of every dashboard route, path parameters filled in; the routes
    come from the dashboard's router list (FastAPI includes routers lazily)."""
    assert app.state.dashboard is not None
    out = []
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute):
                path = re.sub(r"\{[^}]+\}", "u01", route.path)
                out.extend((method, path) for method in sorted(route.methods - {"HEAD"}))
    return out


PUBLIC = {("GET", "/dashboard/login"), ("POST", "/dashboard/login")}


def test_every_route_is_listed(app: FastAPI) -> None:
    routes = dashboard_routes(app)
    paths = {p for _, p in routes}
    for expected in ("/dashboard/", "/dashboard/users/u01", "/dashboard/settings/keys",
                     "/dashboard/experiments/u01/start", "/dashboard/messaging/preview"):
        assert expected in paths
    assert len(routes) > 25


def test_nothing_is_reachable_without_login(app: FastAPI, anonymous: TestClient) -> None:
    for method, path in dashboard_routes(app):
        if (method, path) in PUBLIC:
            continue
        response = anonymous.request(method, path, follow_redirects=False)
        assert response.status_code == 303, (method, path, response.status_code)
        assert response.headers["location"].startswith("/dashboard/login?next="), (method, path)
        assert "u01" not in response.text and "Customer" not in response.text


def test_unknown_paths_and_htmx_requests_also_need_login(anonymous: TestClient) -> None:
    assert anonymous.get("/dashboard/no/such/page", follow_redirects=False).status_code == 303
    htmx = anonymous.get("/dashboard/panels/overview", headers={"HX-Request": "true"},
                         follow_redirects=False)
    assert htmx.status_code == 401
    assert htmx.headers["hx-redirect"].startswith("/dashboard/login")


def test_static_files_and_login_page_are_public(anonymous: TestClient) -> None:
    assert anonymous.get("/dashboard/static/vendor/htmx.min.js").status_code == 200
    assert anonymous.get("/dashboard/static/dashboard.js").status_code == 200
    page = anonymous.get("/dashboard/login")
    assert page.status_code == 200
    assert 'type="password"' in page.text


def test_login_with_the_admin_key_opens_a_session(anonymous: TestClient) -> None:
    response = login(anonymous)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # plain http here; see the https test
    assert anonymous.get("/dashboard/").status_code == 200


def test_cookie_is_secure_over_https(app: FastAPI) -> None:
    with TestClient(app, base_url="https://testserver") as client:
        response = login(client)
        assert "Secure" in response.headers["set-cookie"]


@pytest.mark.parametrize("key", ["", "wrong-key", "demo-admin-key-not-for-production "[:-2]])
def test_a_wrong_key_is_refused(anonymous: TestClient, key: str) -> None:
    response = login(anonymous, key)
    assert response.status_code == 401
    assert COOKIE_NAME not in response.headers.get("set-cookie", "")
    assert anonymous.get("/dashboard/", follow_redirects=False).status_code == 303


def test_a_key_without_admin_scope_is_refused(anonymous: TestClient, shop_stores: Stores) -> None:
    _, secret = shop_stores.keys.create("default", "reader", [Scope.SERVE, Scope.INGEST])
    response = login(anonymous, secret)
    assert response.status_code == 403
    assert "admin" in response.text


def test_a_stored_admin_key_logs_in_and_its_revocation_ends_the_session(
    anonymous: TestClient, shop_stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    record, secret = shop_stores.keys.create("default", "operator", [Scope.ADMIN])
    assert login(anonymous, secret).status_code == 303
    assert anonymous.get("/dashboard/users").status_code == 200
    shop_stores.keys.revoke(record.key_id)
    monkeypatch.setattr("personify.dashboard.guard.KEY_RECHECK_SECONDS", 0.0)
    assert anonymous.get("/dashboard/users", follow_redirects=False).status_code == 303


def test_login_needs_its_csrf_token(anonymous: TestClient) -> None:
    anonymous.get("/dashboard/login")
    response = anonymous.post("/dashboard/login", data={"key": "demo-admin-key-not-for-production",
                                                        "csrf_token": "forged"})
    assert response.status_code == 403
    assert anonymous.get("/dashboard/", follow_redirects=False).status_code == 303


def test_login_redirects_only_inside_the_dashboard(anonymous: TestClient) -> None:
    page = anonymous.get("/dashboard/login")
    token = CSRF_RE.search(page.text)
    assert token is not None
    response = anonymous.post(
        "/dashboard/login",
        data={"key": "demo-admin-key-not-for-production", "csrf_token": token.group(1),
              "next": "https://evil.example/steal"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/dashboard/"


def test_failed_logins_are_throttled(anonymous: TestClient) -> None:
    statuses = [login(anonymous, f"bad-{i}").status_code for i in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[-1] == 429
    assert login(anonymous).status_code == 429  # even the right key waits


def test_forged_session_cookie_is_refused(client: TestClient) -> None:
    value = client.cookies.get(COOKIE_NAME)
    assert value is not None
    session_id, signature = value.split(".")
    client.cookies.set(COOKIE_NAME, f"{session_id}x.{signature}", path="/dashboard")
    assert client.get("/dashboard/", follow_redirects=False).status_code == 303


def test_logout_ends_the_session(client: TestClient) -> None:
    token = csrf_of(client)
    old = client.cookies.get(COOKIE_NAME)
    response = client.post("/dashboard/logout", data={"csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303
    client.cookies.set(COOKIE_NAME, old or "", path="/dashboard")  # replaying the old cookie
    assert client.get("/dashboard/", follow_redirects=False).status_code == 303


def test_every_post_needs_the_csrf_token(app: FastAPI, client: TestClient) -> None:
    posts = [p for m, p in dashboard_routes(app) if m == "POST" and (m, p) not in PUBLIC]
    assert len(posts) >= 10
    for path in posts:
        response = client.post(path, data={"csrf_token": "wrong"}, follow_redirects=False)
        assert response.status_code == 403, path
        assert client.post(path, follow_redirects=False).status_code == 403, path
    # the session is still alive and nothing was erased
    assert client.get("/dashboard/users/u01").status_code == 200


def test_csrf_token_in_the_htmx_header_is_accepted(client: TestClient) -> None:
    token = csrf_of(client)
    response = client.post("/dashboard/users/u01/click", data={"item_id": "i01"},
                           headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert response.status_code == 200
    assert 'id="recs"' in response.text


def test_security_headers(client: TestClient) -> None:
    response = client.get("/dashboard/users/u01")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "<script>" not in response.text  # no inline scripts: the CSP forbids them
