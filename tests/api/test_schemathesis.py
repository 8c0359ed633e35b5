"""Schemathesis against the OpenAPI document, in process: every operation, bounded generated
examples, with the admin key on SQLite and PostgreSQL and with each narrower key on SQLite.
Checks: no server error, every status code declared, the declared content type, and the body
matching the declared schema."""

from __future__ import annotations

from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import checks  # noqa: E402

from personify.api import create_app  # noqa: E402
from personify.domain.keys import Scope  # noqa: E402
from personify.settings import Settings  # noqa: E402
from personify.storage.registry import open_stores  # noqa: E402

CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]

RUNS = [
    pytest.param("sqlite", Scope.ADMIN, 4, id="sqlite-admin"),
    pytest.param("postgres", Scope.ADMIN, 3, id="postgres-admin", marks=pytest.mark.postgres),
    pytest.param("sqlite", Scope.INGEST, 2, id="sqlite-ingest"),
    pytest.param("sqlite", Scope.SERVE, 2, id="sqlite-serve"),
]


@pytest.mark.parametrize(("database", "scope", "examples"), RUNS)
def test_every_operation_conforms_to_the_schema(
    request: pytest.FixtureRequest, tmp_path: Path, database: str, scope: Scope, examples: int
) -> None:
    url = (f"sqlite:///{tmp_path / 'st.db'}" if database == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    stores = open_stores(url)
    _, secret = stores.keys.create("default", f"schemathesis {scope.value}", [scope])
    app = create_app(Settings(database_url=url, demo=False, model_dir=str(tmp_path / "models")),
                     stores=stores)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 60
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: "
                            + str(exc).strip()[:800])
    stores.close()
    assert failures == [], "\n\n".join(failures)
