"""``personify privacy export`` includes the person's messages (and nobody else's), and
``personify models promote | rollback`` never bring an erased person back."""

from __future__ import annotations

import io
import json
import random
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import Result

from personify.domain.events import Event
from personify.domain.users import User
from personify.jobs.training import TrainingConfig, train_tenant
from personify.messaging.outbox import new_message
from personify.messaging.records import InboxEntry
from personify.messaging.state_stores import open_state_file
from personify.privacy.model_influence import load_influence, version_dir
from personify.privacy.pseudonyms import tombstone_key
from personify.storage.model_files import FileModelStore
from personify.storage.registry import open_stores

T = "default"
Personify = Callable[..., Result]


def _messaging_db(database_url: str) -> str:
    """Where the server keeps messaging state for this database (next to the SQLite file)."""
    path = Path(database_url.removeprefix("sqlite:///"))
    return str(path.with_name(f"{path.stem}.messaging.db"))


def test_export_holds_the_persons_messages_and_nobody_elses(
    personify: Personify, database_url: str, tmp_path: Path
) -> None:
    with open_stores(database_url) as stores:
        stores.users.upsert(T, [User(user_id="ana"), User(user_id="bob")])
    state = open_state_file(_messaging_db(database_url))
    outbox, inbox = state.outbox, state.inbox
    try:
        for user, template in (("ana", "welcome"), ("bob", "bob-only-template")):
            outbox.enqueue(new_message(T, user, template, dedup_key=f"w-{user}",
                                       purpose="email_marketing"))
        for user in ("ana", "bob"):
            inbox.add(InboxEntry(entry_id=f"in-{user}", tenant=T, user_id=user,
                                 subject=f"hello {user}", text="news",
                                 created_at=datetime.now(UTC)))
    finally:
        state.close()

    result = personify("privacy", "export", "ana")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    items = data["messages"]["items"]
    assert [(m["kind"], m.get("template") or m.get("subject")) for m in items] == [
        ("message", "welcome"), ("inbox", "hello ana")]
    assert "bob" not in json.dumps(items)

    archive = tmp_path / "ana.zip"
    result = personify("privacy", "export", "ana", "-o", str(archive))
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as z:
        rows = z.read("messages.csv").decode().splitlines()
        assert "welcome" in z.read("export.json").decode()
    assert rows[0].startswith("kind,message_id") and len(rows) == 3
    assert any("welcome" in r for r in rows) and not any("bob" in r for r in rows)


def test_export_without_a_messaging_state_says_nothing_was_sent(personify: Personify) -> None:
    result = personify("privacy", "export", "nobody")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["messages"] == {"items": [], "note": ""}


@pytest.fixture
def shop(database_url: str, monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    """Events of 20 people who may be profiled (so they train)."""
    monkeypatch.setenv("PERSONIFY_CONSENT_DEFAULTS", '{"profiling": "opt-out"}')
    rng = random.Random(3)
    now = datetime.now(UTC)
    events = [
        Event(event_id=f"e{u}-{j}", type="view", user_id=f"u{u}",
              item_id=f"i{rng.randint(0, 20)}", timestamp=now - timedelta(hours=rng.randint(1, 99)))
        for u in range(20) for j in range(rng.randint(2, 6))
    ]
    with open_stores(database_url) as stores:
        stores.events.append(T, events)
    return events


def _promoted(tmp_path: Path) -> str:
    version = FileModelStore(tmp_path / "models").promoted_version(T)
    assert version is not None
    return version


def test_rollback_serves_the_old_version_without_the_erased_person(
    personify: Personify, shop: list[Event], database_url: str, tmp_path: Path
) -> None:
    assert personify("train", "--no-blend", "--no-ranker").exit_code == 0
    first = _promoted(tmp_path)
    assert personify("train", "--no-blend", "--no-ranker").exit_code == 0
    erased = personify("privacy", "erase", "u3")
    assert erased.exit_code == 0 and "subtracted" in erased.output, erased.output

    # both versions held u3: the one served (the base of its replacement) and `first`
    assert "2 rewritten without them" in erased.output and first in erased.output

    result = personify("models", "rollback")
    assert result.exit_code == 0, result.output
    served = _promoted(tmp_path)
    assert served == first and f"rolled back to {first}" in result.output, (
        "the erasure rewrote the older version in place: it is served as it is"
    )
    models = FileModelStore(tmp_path / "models")
    index = load_influence(version_dir(models, T, served))
    with open_stores(database_url) as stores:
        key = tombstone_key(stores.erasures.user_id_hash(T, "u3"))
    assert index is not None and key not in index.keys and len(index.keys) == 19


def test_an_older_version_that_cannot_forget_is_deleted_by_the_erasure(
    personify: Personify, shop: list[Event], database_url: str, tmp_path: Path
) -> None:
    models = FileModelStore(tmp_path / "models")
    with open_stores(database_url) as stores:  # trained without the privacy gate: no index
        old = train_tenant(stores.events, models, T, TrainingConfig(learn_blend=False),
                           promote=False).version
    assert personify("train", "--no-blend", "--no-ranker").exit_code == 0
    current = _promoted(tmp_path)
    erased = personify("privacy", "erase", "u5")
    assert erased.exit_code == 0
    assert f"1 deleted for want of an influence index ({old})" in " ".join(
        erased.output.split()
    ), erased.output
    assert not version_dir(models, T, old).exists(), "nothing could remove u5 from it"
    serving = _promoted(tmp_path)
    assert serving != current, "the erasure derived a version without u5"

    result = personify("models", "promote", old)
    assert result.exit_code != 0
    assert f"no model version '{old}'" in " ".join(result.output.split())
    assert _promoted(tmp_path) == serving, "nothing changed"
