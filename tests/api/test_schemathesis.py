"""Schemathesis against the OpenAPI document, in process, through its own engine (the phases the
``st run`` command runs): examples, coverage (boundary and negative values of every parameter and
body), fuzzing (positive and negative generated data) and the stateful phase (sequences of calls
along the links Schemathesis infers), with a fixed seed and a bounded number of examples.

It runs with the admin key on SQLite and PostgreSQL and with every narrower key (``serve``, the
public ``ingest`` and ``browser`` keys, ``metrics``) on both databases. Every run checks:

* Schemathesis' checks: no server error, every status code, content type, header and body as
  declared, schema-violating requests refused, authentication not ignored, a deleted resource
  gone, and the 405's ``Allow``;
* every 4xx names the field (``error.field``);
* no operation accepts a value of another JSON type than its schema names (``0`` for a boolean
  or a date-time, ``false`` for an integer, a number for a date-time query parameter): the
  ``negative_data_rejection`` check runs on every operation but the per-record batches;
* a narrower key never reaches data it may not: no answer carries the stored person's contact
  fields, declared interests or consent record, nor anything of another tenant, and the stored
  person's profile, consent and preferences are unchanged afterwards.

``positive_data_acceptance`` is left out: the API refuses values the schema cannot express
(an erased id answers 410, an unknown template or time zone 422, always naming the field), which
that check counts as failures. A longer run with more examples:
``PERSONIFY_SCHEMATHESIS_EXAMPLES=50 pytest tests/api/test_schemathesis.py``."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.config import SchemathesisConfig  # noqa: E402
from schemathesis.engine import Status, events, from_schema  # noqa: E402
from schemathesis.engine.run import PhaseName  # noqa: E402

from personify.api import create_app  # noqa: E402
from personify.domain.keys import Scope  # noqa: E402
from personify.settings import Settings  # noqa: E402
from personify.storage.registry import open_stores  # noqa: E402

ORIGIN = "https://shop.example"
VISITOR = "anon-schemathesisvisitor01"
EXAMPLES = int(os.environ.get("PERSONIFY_SCHEMATHESIS_EXAMPLES", "3"))

# what only the admin key of tenant "default" may read, and everything of tenant "other"
SECRETS = ("victim.secret@example.test", "Secretville-on-Test", "Victoria Secretname",
           "falconry-interest", "consent-text-v7x", "other-tenant-item-title")
VICTIM = "victim-7f3a"

CHECKS_OFF = ("positive_data_acceptance",)

# operations where a check is off, and why
PER_RECORD = ("POST /v1/events/batch", "POST /v1/items:bulk", "POST /v1/users:bulk")
"""Batches answer 200 / 207 and refuse bad records by index (one bad record never costs the good
ones), so a batch with a schema-violating record is, rightly, not refused as a whole."""
AMBIGUOUS_PATHS = ("POST /v1/segments/refresh",)
"""``GET/PUT/DELETE /v1/segments/refresh`` reach the segment named ``refresh`` (the templated
route), so the 405's Allow there truthfully lists methods the literal path does not document."""


@dataclass
class Outcome:
    failures: dict[str, set[str]] = field(default_factory=dict)
    operations: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    phases: set[str] = field(default_factory=set)
    stateful_steps: int = 0
    errors: list[str] = field(default_factory=list)


_state: dict[str, Any] = {"narrow": False}


@schemathesis.check
def error_names_the_field(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx JSON error says which field (or header, or parameter) was wrong."""
    if not 400 <= response.status_code < 500:
        return None
    if "json" not in ",".join(response.headers.get("content-type", [])):
        return None  # pages for people (an invalid unsubscribe link) say it in words
    try:
        error = json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(f"{response.status_code} without the JSON error shape") from None
    if not error.get("field"):
        raise AssertionError(f"{response.status_code} {error.get('code')} names no field: "
                             f"{error.get('message')!r}")
    return None


@schemathesis.check
def no_data_of_another_scope(ctx: Any, response: Any, case: Any) -> bool | None:
    """A narrower key's answers carry none of the admin-only person's data or the other
    tenant's."""
    if not _state["narrow"]:
        return None
    body = response.content.decode("utf-8", "replace")
    leaked = [s for s in SECRETS if s in body]
    if leaked:
        raise AssertionError(f"answer with a narrower key carries {leaked}")
    return None


def _seed_through_api(app: Any, admin: str, other: str) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    client = TestClient(app)  # no lifespan: leaving it would close the stores
    h = {"Authorization": f"Bearer {admin}"}
    r = client.put(f"/v1/users/{VICTIM}", headers=h, json={"profile": {
        "email": SECRETS[0], "city": SECRETS[1], "name": SECRETS[2]}})
    assert r.status_code == 200, r.text
    r = client.put(f"/v1/users/{VICTIM}/preferences", headers=h,
                   json={"declared_interests": [SECRETS[3]]})
    assert r.status_code == 200, r.text
    r = client.post(f"/v1/users/{VICTIM}/consents/email_marketing:grant", headers=h,
                    json={"text_version": SECRETS[4], "source": "banner"})
    assert r.status_code == 201, r.text
    r = client.put("/v1/items/o1", headers={"Authorization": f"Bearer {other}"},
                   json={"title": SECRETS[5]})
    assert r.status_code == 200, r.text
    return _victim(client, h)


def _victim(client: Any, h: dict[str, str]) -> dict[str, Any]:
    user = client.get(f"/v1/users/{VICTIM}", headers=h).json()
    user.pop("updated_at", None)
    return {
        "user": user,
        "preferences": client.get(f"/v1/users/{VICTIM}/preferences", headers=h).json(),
        "consents": client.get(f"/v1/users/{VICTIM}/consents", headers=h).json(),
    }


def run_schemathesis(app: Any, headers: dict[str, str], *, phases: tuple[str, ...],
                     examples: int) -> Outcome:
    config = SchemathesisConfig.from_dict({
        "seed": 19,
        "headers": headers,
        "max-failures": 100_000,
        # an erasure of a thousand ids on a loaded PostgreSQL outlasts the default 10 s
        "request-timeout": 180,
        "generation": {"max-examples": examples, "database": "none", "mode": "all",
                       "deterministic": True, "with-security-parameters": False},
        "phases": {
            "examples": {"enabled": "examples" in phases},
            # one unexpected method per operation (the 405 and its Allow), not eight
            "coverage": {"enabled": "coverage" in phases, "unexpected-methods": ["options"]},
            "fuzzing": {"enabled": "fuzzing" in phases},
            "stateful": {"enabled": "stateful" in phases, "max-steps": 20},
        },
        "checks": {name: {"enabled": False} for name in CHECKS_OFF},
        "operations": [
            *({"include-name": name, "checks": {"negative_data_rejection": {"enabled": False}}}
              for name in PER_RECORD),
            *({"include-name": name, "checks": {"allow_header_conformance": {"enabled": False}}}
              for name in AMBIGUOUS_PATHS),
        ],
    })
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    outcome = Outcome()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            outcome.phases.add(event.phase.value)
            if event.status is Status.ERROR:  # e.g. the app raised: no interaction recorded
                outcome.errors.append(f"{event.phase.value} {event.recorder.label}: the "
                                      "scenario ended in an error (see the captured log)")
            recorder = event.recorder
            for case_id, interaction in recorder.interactions.items():
                if interaction.response is not None:
                    outcome.statuses[interaction.response.status_code] += 1
                node = recorder.cases.get(case_id)
                if node is not None:
                    outcome.operations.add(node.value.operation.label)
                    if event.phase is PhaseName.STATEFUL_TESTING:
                        outcome.stateful_steps += 1
            for case_id, nodes in recorder.checks.items():
                for node in nodes:
                    if node.failure_info is None:
                        continue
                    failure = node.failure_info.failure
                    interaction = recorder.interactions.get(case_id)
                    sent = ""
                    if interaction is not None:
                        request, answer = interaction.request, interaction.response
                        sent = (f" <- {request.method} {request.uri} "
                                f"{(request.body or b'')[:300]!r}")
                        if answer is not None:
                            sent += f" -> {answer.status_code} {answer.content[:300]!r}"
                    key = f"{node.name}: {recorder.label}"
                    outcome.failures.setdefault(key, set()).add(
                        f"{failure.title}: {str(getattr(failure, 'message', ''))[:300]}{sent}")
        elif isinstance(event, events.NonFatalError | events.FatalError):
            outcome.errors.append(repr(event)[:500])
    return outcome


def _report(outcome: Outcome) -> str:
    lines = []
    for key, messages in sorted(outcome.failures.items()):
        lines.append(key)
        lines.extend("    " + m.replace("\n", " | ")[:900] for m in sorted(messages)[:2])
    return "\n".join(lines + outcome.errors)


ALL = ("examples", "coverage", "fuzzing", "stateful")
NARROW = (Scope.SERVE, Scope.INGEST, Scope.BROWSER, Scope.METRICS)
NARROW_EXAMPLES = max(1, EXAMPLES - 1)
"""A narrower key meets the scope check on most operations (answered before the body is read),
and the admin runs already fuzz every operation's data; its runs look for what reaches past the
scope, with one example fewer per operation."""
RUNS = [
    # per database, the narrower keys first and the admin key last: they share one deployment
    # (migrated and seeded once), and the admin's own run may change anything afterwards.
    # The coverage phase is unbounded (every boundary of every parameter) and, with a narrower
    # key, mostly meets the scope check; generated data and call sequences reach the rest
    *(pytest.param("sqlite", scope, ("examples", "fuzzing", "stateful"),
                   id=f"sqlite-{scope.value}") for scope in NARROW),
    pytest.param("sqlite", Scope.ADMIN, ALL, id="sqlite-admin"),
    *(pytest.param("postgres", scope, ("examples", "fuzzing"), id=f"postgres-{scope.value}",
                   marks=pytest.mark.postgres) for scope in NARROW),
    pytest.param("postgres", Scope.ADMIN, ALL, id="postgres-admin", marks=pytest.mark.postgres),
]


@dataclass
class Deployment:
    """One migrated, seeded server per database, shared by the runs of every key."""

    app: Any
    stores: Any
    admin: str
    secrets: dict[Scope, str]


def _deploy(url: str, model_dir: Path) -> Deployment:
    stores = open_stores(url)
    _, admin = stores.keys.create("default", "seed", [Scope.ADMIN])
    _, other = stores.keys.create("other", "seed", [Scope.ADMIN])
    secrets = {scope: stores.keys.create("default", f"schemathesis {scope.value}", [scope])[1]
               for scope in (Scope.ADMIN, *NARROW)}
    settings = Settings(database_url=url, demo=False, model_dir=str(model_dir),
                        allowed_origins={"default": [ORIGIN]},
                        rate_limit_browser_visitor_per_minute=0)
    app = create_app(settings, stores=stores)
    _seed_through_api(app, admin, other)
    return Deployment(app, stores, admin, secrets)


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``deployment(database)``: the shared deployment on ``database``, made on first use."""
    made: dict[str, Deployment] = {}
    schemas: list[tuple[Any, str]] = []

    def deployment(database: str, request: pytest.FixtureRequest) -> Deployment:
        if database not in made:
            tmp = tmp_path_factory.mktemp(f"st-{database}")
            if database == "sqlite":
                url = f"sqlite:///{tmp / 'st.db'}"
            else:  # one schema for the module (the postgres_url fixture is per test)
                server = str(request.getfixturevalue("postgres_server_url"))
                schema = f"t_{uuid.uuid4().hex[:12]}"
                engine = sa.create_engine(server)
                with engine.begin() as conn:
                    conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
                schemas.append((engine, schema))
                url = f"{server}{'&' if '?' in server else '?'}options=-csearch_path%3D{schema}"
            made[database] = _deploy(url, tmp / "models")
        return made[database]

    yield {"get": deployment}
    for deployed in made.values():
        deployed.stores.close()
    for engine, schema in schemas:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.mark.timeout(1200)
@pytest.mark.parametrize(("database", "scope", "phases"), RUNS)
def test_every_operation_conforms_and_no_key_reaches_beyond_its_scope(
    request: pytest.FixtureRequest, deployments: dict[str, Any], database: str, scope: Scope,
    phases: tuple[str, ...],
) -> None:
    from fastapi.testclient import TestClient

    deployed: Deployment = deployments["get"](database, request)
    app, admin_headers = deployed.app, {"Authorization": f"Bearer {deployed.admin}"}
    before = _victim(TestClient(app), admin_headers)
    assert before["user"]["profile"]["email"] == SECRETS[0]  # the secrets are there to leak
    headers = {"Authorization": f"Bearer {deployed.secrets[scope]}"}
    if scope is Scope.BROWSER:  # a page of the shop, for its own visitor
        headers |= {"Origin": ORIGIN, "X-Personify-Anonymous-Id": VISITOR}
    _state["narrow"] = scope is not Scope.ADMIN
    try:
        outcome = run_schemathesis(app, headers, phases=phases,
                                   examples=EXAMPLES if scope is Scope.ADMIN else NARROW_EXAMPLES)
    finally:
        _state["narrow"] = False
    schema_ops = {f"{m.upper()} {p}" for p, ops in app.openapi()["paths"].items()
                  for m in ops if m in {"get", "put", "post", "patch", "delete"}}
    assert outcome.failures == {} and outcome.errors == [], _report(outcome)
    assert outcome.operations == schema_ops, sorted(schema_ops - outcome.operations)
    assert set(phases) - {"examples"} <= outcome.phases  # the schema has few examples
    if "stateful" in phases and scope is Scope.ADMIN:
        assert outcome.stateful_steps > 0
    assert not any(s >= 500 for s in outcome.statuses), outcome.statuses
    if scope is not Scope.ADMIN:
        assert _victim(TestClient(app), admin_headers) == before
