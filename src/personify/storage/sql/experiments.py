"""SQL adapters of the experiment ports: definitions, first exposures, bandit decisions, the
sticky-assignment alias map, the decision points (bandit configuration and learned-state
snapshots) and the bandit update log every process appends to and replays.

Storage sits below ``personify.experiments`` in the layering, so these adapters never import it:
they store JSON documents plus the few columns they filter on, and the caller hands in how to
rebuild its records (``Experiment.model_validate``, ``ExposureRecord``, ``DecisionLog.from_dict``)::

    store = SqlExperimentStore(db, Experiment.model_validate)

Each adapter then satisfies the matching protocol of ``personify.experiments.ports``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import orjson
import sqlalchemy as sa

from personify.storage.sql._columns import to_utc
from personify.storage.sql._dialect import upsert_insert
from personify.storage.sql.database import Database
from personify.storage.sql.experiment_tables import (
    bandit_decisions,
    bandit_updates,
    decision_points,
    experiment_aliases,
    experiment_exposures,
    experiments,
)


def _dumps(document: Mapping[str, Any]) -> str:
    return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS).decode()


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class StoredDefinition(Protocol):
    """What the experiment store reads off a definition (``Experiment`` satisfies it)."""

    @property
    def name(self) -> str: ...

    @property
    def layer(self) -> str: ...

    @property
    def status(self) -> str: ...

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


class StoredExposure(Protocol):
    """What the exposure log reads off an exposure (``ExposureRecord`` satisfies it)."""

    @property
    def experiment(self) -> str: ...

    @property
    def variant(self) -> str: ...

    @property
    def unit(self) -> str: ...

    @property
    def timestamp(self) -> datetime: ...

    @property
    def recommendation_id(self) -> str | None: ...


class StoredDecision(Protocol):
    """What the decision log reads off a decision (``DecisionLog`` satisfies it)."""

    @property
    def decision_id(self) -> str: ...

    @property
    def policy(self) -> str: ...

    @property
    def timestamp(self) -> datetime: ...

    def to_dict(self) -> dict[str, Any]: ...


D = TypeVar("D", bound=StoredDefinition)
X = TypeVar("X", bound=StoredExposure)
L = TypeVar("L", bound=StoredDecision)

_E = experiments.c
_X = experiment_exposures.c
_A = experiment_aliases.c
_B = bandit_decisions.c
_P = decision_points.c
_U = bandit_updates.c


class SqlExperimentStore(Generic[D]):
    """``ExperimentStore``: one JSON definition per (tenant, name), listed by layer and status."""

    def __init__(self, db: Database, decode: Callable[[Mapping[str, Any]], D]) -> None:
        self._db = db
        self._decode = decode

    def save(self, tenant: str, experiment: D) -> None:
        """Insert or replace the definition named ``experiment.name``."""
        values = {
            "tenant": tenant,
            "name": experiment.name,
            "layer": experiment.layer,
            "status": str(experiment.status),
            "updated_at": datetime.now(UTC),
            "definition": _dumps(experiment.model_dump(mode="json")),
        }
        insert = upsert_insert(self._db.dialect, experiments).values(**values)
        statement = insert.on_conflict_do_update(
            index_elements=["tenant", "name"],
            set_={k: insert.excluded[k] for k in ("layer", "status", "updated_at", "definition")},
        )
        with self._db.write() as conn:
            conn.execute(statement)

    def get(self, tenant: str, name: str) -> D | None:
        query = sa.select(_E.definition).where(_E.tenant == tenant, _E.name == name)
        with self._db.read() as conn:
            found = conn.execute(query).scalar_one_or_none()
        return None if found is None else self._decode(orjson.loads(found))

    def list(
        self, tenant: str, *, layer: str | None = None, status: str | None = None
    ) -> list[D]:
        """The tenant's definitions by name, optionally of one layer and / or status."""
        query = sa.select(_E.definition).where(_E.tenant == tenant).order_by(_E.name)
        if layer is not None:
            query = query.where(_E.layer == layer)
        if status is not None:
            query = query.where(_E.status == str(status))
        with self._db.read() as conn:
            rows = conn.execute(query).scalars().all()
        return [self._decode(orjson.loads(row)) for row in rows]

    def delete(self, tenant: str, name: str) -> bool:
        """Remove a definition (its exposures stay); True when it existed."""
        statement = sa.delete(experiments).where(_E.tenant == tenant, _E.name == name)
        with self._db.write() as conn:
            return _rowcount(conn.execute(statement)) > 0


class SqlExposureLog(Generic[X]):
    """``ExposureLog``: the first exposure of each unit to each experiment; later ones ignored.

    ``make(experiment, variant, unit, timestamp, recommendation_id)`` rebuilds a record.
    """

    def __init__(
        self, db: Database, make: Callable[[str, str, str, datetime, str | None], X]
    ) -> None:
        self._db = db
        self._make = make
        self.on_first: Callable[[str, str], None] | None = None
        """Told ``(experiment, variant)`` of every first exposure stored (the metrics)."""

    def record(self, tenant: str, exposure: X) -> bool:
        """Store the exposure; False when the unit was already exposed to that experiment."""
        statement = (
            upsert_insert(self._db.dialect, experiment_exposures)
            .values(
                tenant=tenant,
                experiment=exposure.experiment,
                unit=exposure.unit,
                variant=exposure.variant,
                timestamp=to_utc(exposure.timestamp),
                recommendation_id=exposure.recommendation_id,
            )
            .on_conflict_do_nothing(index_elements=["tenant", "experiment", "unit"])
            .returning(_X.unit)
        )
        with self._db.write() as conn:
            first = conn.execute(statement).first() is not None
        if first and self.on_first is not None:
            self.on_first(exposure.experiment, exposure.variant)
        return first

    def delete_units(self, tenant: str, units: Sequence[str]) -> int:
        """Erasure: every exposure of these units, in every experiment; returns how many."""
        if not units:
            return 0
        statement = sa.delete(experiment_exposures).where(
            _X.tenant == tenant, _X.unit.in_(list(units))
        )
        with self._db.write() as conn:
            return int(conn.execute(statement).rowcount or 0)

    def exposures(self, tenant: str, experiment: str) -> list[X]:
        """Every unit's first exposure, oldest first."""
        query = (
            sa.select(_X.experiment, _X.variant, _X.unit, _X.timestamp, _X.recommendation_id)
            .where(_X.tenant == tenant, _X.experiment == experiment)
            .order_by(_X.timestamp, _X.unit)
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        return [self._make(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def count(self, tenant: str, experiment: str) -> dict[str, int]:
        """Exposed units per variant (cheap, without loading the units)."""
        query = (
            sa.select(_X.variant, sa.func.count())
            .where(_X.tenant == tenant, _X.experiment == experiment)
            .group_by(_X.variant)
        )
        with self._db.read() as conn:
            return {str(v): int(n) for v, n in conn.execute(query).all()}


class SqlDecisionLogStore(Generic[L]):
    """``DecisionLogStore``: bandit decisions by (tenant, decision_id), scanned in time order."""

    def __init__(self, db: Database, decode: Callable[[Mapping[str, Any]], L]) -> None:
        self._db = db
        self._decode = decode

    def record(self, tenant: str, decision: L) -> None:
        """Store a decision (a repeated id replaces the earlier record)."""
        self.record_many([(tenant, decision)])

    def record_many(self, decisions: Sequence[tuple[str, L]]) -> None:
        """Store ``(tenant, decision)`` pairs in one transaction (a repeated id replaces the
        earlier record; within the batch the last one wins)."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for tenant, decision in decisions:
            rows[(tenant, decision.decision_id)] = {
                "tenant": tenant,
                "decision_id": decision.decision_id,
                "policy": decision.policy,
                "timestamp": to_utc(decision.timestamp),
                "body": _dumps(decision.to_dict()),
            }
        if not rows:
            return
        insert = upsert_insert(self._db.dialect, bandit_decisions)
        statement = insert.on_conflict_do_update(
            index_elements=["tenant", "decision_id"],
            set_={k: insert.excluded[k] for k in ("policy", "timestamp", "body")},
        )
        with self._db.write() as conn:
            conn.execute(statement, list(rows.values()))

    def get(self, tenant: str, decision_id: str) -> L | None:
        query = sa.select(_B.body).where(_B.tenant == tenant, _B.decision_id == decision_id)
        with self._db.read() as conn:
            found = conn.execute(query).scalar_one_or_none()
        return None if found is None else self._decode(orjson.loads(found))

    def scan(
        self,
        tenant: str,
        *,
        policy: str | None = None,
        since: datetime | None = None,
        batch_size: int = 2_000,
    ) -> Iterator[L]:
        """Decisions oldest first, read in keyset-paged batches (no connection held between)."""
        after: tuple[datetime, str] | None = None
        while True:
            query = (
                sa.select(_B.timestamp, _B.decision_id, _B.body)
                .where(_B.tenant == tenant)
                .order_by(_B.timestamp, _B.decision_id)
                .limit(batch_size)
            )
            if policy is not None:
                query = query.where(_B.policy == policy)
            if since is not None:
                query = query.where(_B.timestamp >= to_utc(since))
            if after is not None:
                ts, last_id = after  # column comparisons bind with the column types
                query = query.where(
                    sa.or_(_B.timestamp > ts, sa.and_(_B.timestamp == ts, _B.decision_id > last_id))
                )
            with self._db.read() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield self._decode(orjson.loads(row.body))
            if len(rows) < batch_size:
                return
            after = (rows[-1].timestamp, rows[-1].decision_id)


class SqlAliasStore:
    """The alias map of sticky assignment: user id -> the first unit key seen for that user.

    ``for_tenant(tenant)`` gives the ``MutableMapping`` that
    ``personify.experiments.assignment.assignment_unit`` expects; its ``setdefault`` is atomic
    (first writer wins across processes).
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def for_tenant(self, tenant: str) -> TenantAliases:
        return TenantAliases(self, tenant)

    def get(self, tenant: str, user_id: str) -> str | None:
        query = sa.select(_A.unit).where(_A.tenant == tenant, _A.user_id == user_id)
        with self._db.read() as conn:
            found = conn.execute(query).scalar_one_or_none()
        return None if found is None else str(found)

    def setdefault(self, tenant: str, user_id: str, unit: str) -> str:
        """Record ``unit`` unless the user has one already; returns the recorded unit."""
        statement = (
            upsert_insert(self._db.dialect, experiment_aliases)
            .values(tenant=tenant, user_id=user_id, unit=unit, created_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=["tenant", "user_id"])
        )
        query = sa.select(_A.unit).where(_A.tenant == tenant, _A.user_id == user_id)
        with self._db.write() as conn:
            conn.execute(statement)
            return str(conn.execute(query).scalar_one())

    def set(self, tenant: str, user_id: str, unit: str) -> None:
        """Record or replace the user's unit (administrative; assignment uses ``setdefault``)."""
        insert = upsert_insert(self._db.dialect, experiment_aliases).values(
            tenant=tenant, user_id=user_id, unit=unit, created_at=datetime.now(UTC)
        )
        statement = insert.on_conflict_do_update(
            index_elements=["tenant", "user_id"], set_={"unit": insert.excluded.unit}
        )
        with self._db.write() as conn:
            conn.execute(statement)

    def all(self, tenant: str) -> dict[str, str]:
        """Every alias of the tenant (for an experiment report)."""
        query = sa.select(_A.user_id, _A.unit).where(_A.tenant == tenant)
        with self._db.read() as conn:
            return {str(u): str(k) for u, k in conn.execute(query).all()}

    def delete_user(self, tenant: str, user_id: str) -> bool:
        """Forget the user's alias (erasure); True when there was one."""
        statement = sa.delete(experiment_aliases).where(
            _A.tenant == tenant, _A.user_id == user_id
        )
        with self._db.write() as conn:
            return _rowcount(conn.execute(statement)) > 0

    def count(self, tenant: str) -> int:
        query = sa.select(sa.func.count()).select_from(experiment_aliases)
        with self._db.read() as conn:
            return int(conn.execute(query.where(_A.tenant == tenant)).scalar_one())


class TenantAliases(MutableMapping[str, str]):
    """One tenant's aliases as a mutable mapping backed by :class:`SqlAliasStore`."""

    def __init__(self, store: SqlAliasStore, tenant: str) -> None:
        self._store = store
        self._tenant = tenant

    def __getitem__(self, user_id: str) -> str:
        found = self._store.get(self._tenant, user_id)
        if found is None:
            raise KeyError(user_id)
        return found

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, str) and self._store.get(self._tenant, user_id) is not None

    def __setitem__(self, user_id: str, unit: str) -> None:
        self._store.set(self._tenant, user_id, unit)

    def __delitem__(self, user_id: str) -> None:
        if not self._store.delete_user(self._tenant, user_id):
            raise KeyError(user_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self._store.all(self._tenant))

    def __len__(self) -> int:
        return self._store.count(self._tenant)

    def setdefault(self, user_id: str, default: str | None = None) -> str:
        """Atomic first-writer-wins insert (the mapping never holds None)."""
        if default is None:
            raise TypeError("an alias needs a unit key")
        return self._store.setdefault(self._tenant, user_id, default)


@dataclass(frozen=True)
class DecisionPointRecord:
    """A named decision point: its bandit configuration and, once it learned, the policy state.

    ``epoch`` changes with every configuration (the update log is kept per epoch);
    ``state_seq`` is the id of the last update-log row the state snapshot includes."""

    point: str
    config: dict[str, Any]
    state: dict[str, Any] | None
    updated_at: datetime
    epoch: str = ""
    state_seq: int | None = None


class SqlDecisionPointStore:
    """Decision points per tenant; ``save_config`` resets the learned state and starts a new
    epoch (and drops the update log of the earlier ones)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.updates = SqlBanditUpdateLog(db)
        """The points' shared update log (same database)."""

    def save_config(self, tenant: str, point: str, config: Mapping[str, Any]) -> str:
        """Create or replace the point's configuration; returns the new epoch."""
        epoch = uuid.uuid4().hex
        insert = upsert_insert(self._db.dialect, decision_points).values(
            tenant=tenant,
            point=point,
            updated_at=datetime.now(UTC),
            config=_dumps(config),
            state=None,
            epoch=epoch,
            state_seq=None,
        )
        statement = insert.on_conflict_do_update(
            index_elements=["tenant", "point"],
            set_={
                k: insert.excluded[k]
                for k in ("updated_at", "config", "state", "epoch", "state_seq")
            },
        )
        drop = sa.delete(bandit_updates).where(
            _U.tenant == tenant, _U.point == point, _U.epoch != epoch
        )
        with self._db.write() as conn:
            conn.execute(statement)
            conn.execute(drop)
        return epoch

    def save_state(self, tenant: str, point: str, state: Mapping[str, Any]) -> bool:
        """Store the learned state of an existing point; False when the point is unknown."""
        statement = (
            sa.update(decision_points)
            .where(_P.tenant == tenant, _P.point == point)
            .values(state=_dumps(state), updated_at=datetime.now(UTC))
        )
        with self._db.write() as conn:
            return _rowcount(conn.execute(statement)) > 0

    def save_snapshot(
        self,
        tenant: str,
        point: str,
        *,
        epoch: str,
        state: Mapping[str, Any],
        seq: int,
        expected_seq: int | None,
    ) -> bool:
        """Store a state that includes the update log up to ``seq``, only when the point is
        still at ``epoch`` and its snapshot still at ``expected_seq`` (optimistic: two
        processes compacting at once never overwrite a newer snapshot with an older one)."""
        current = _P.state_seq.is_(None) if expected_seq is None else _P.state_seq == expected_seq
        statement = (
            sa.update(decision_points)
            .where(_P.tenant == tenant, _P.point == point, _epoch_is(epoch), current)
            .values(state=_dumps(state), state_seq=seq, updated_at=datetime.now(UTC))
        )
        with self._db.write() as conn:
            return _rowcount(conn.execute(statement)) > 0

    def version(self, tenant: str, point: str) -> tuple[str, int | None] | None:
        """``(epoch, state_seq)`` without the state (the cheap check of every sync)."""
        query = sa.select(_P.epoch, _P.state_seq).where(_P.tenant == tenant, _P.point == point)
        with self._db.read() as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else (row.epoch or "", row.state_seq)

    def get(self, tenant: str, point: str) -> DecisionPointRecord | None:
        query = sa.select(decision_points).where(_P.tenant == tenant, _P.point == point)
        with self._db.read() as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else _point(row)

    def list(self, tenant: str) -> list[DecisionPointRecord]:
        query = sa.select(decision_points).where(_P.tenant == tenant).order_by(_P.point)
        with self._db.read() as conn:
            return [_point(row) for row in conn.execute(query).all()]

    def delete(self, tenant: str, point: str) -> bool:
        statement = sa.delete(decision_points).where(_P.tenant == tenant, _P.point == point)
        drop = sa.delete(bandit_updates).where(_U.tenant == tenant, _U.point == point)
        with self._db.write() as conn:
            conn.execute(drop)
            return _rowcount(conn.execute(statement)) > 0


def _epoch_is(epoch: str) -> Any:
    """Points configured before epochs existed have none: they are epoch ``""``."""
    return sa.or_(_P.epoch.is_(None), _P.epoch == "") if epoch == "" else _P.epoch == epoch


def _point(row: Any) -> DecisionPointRecord:
    return DecisionPointRecord(
        row.point,
        orjson.loads(row.config),
        None if row.state is None else orjson.loads(row.state),
        row.updated_at,
        row.epoch or "",
        row.state_seq,
    )


@dataclass(frozen=True)
class BanditUpdate:
    """One policy update: ``action`` of decision ``decision_id`` earned ``reward`` in
    ``context``. ``id`` orders the log (0 before it is stored)."""

    decision_id: str
    action: str
    reward: float
    context: list[float]
    id: int = 0
    created_at: datetime | None = None
    origin: str = ""


class SqlBanditUpdateLog:
    """The shared log of bandit updates per (tenant, point, epoch). Each (decision, action) is
    *claimed* once: the first process to store its update applies it, every other process
    replays it from the log, so all of them converge on the same policy."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(
        self,
        tenant: str,
        point: str,
        epoch: str,
        updates: Sequence[BanditUpdate],
        *,
        origin: str,
        now: datetime,
    ) -> list[BanditUpdate]:
        """Store the updates whose (decision, action) nobody stored yet; returns those, with
        their log ids (the caller applies exactly these)."""
        claimed: list[BanditUpdate] = []
        if not updates:
            return claimed
        at = to_utc(now)
        with self._db.write() as conn:
            for u in updates:  # one row per statement: RETURNING with ON CONFLICT everywhere
                statement = (
                    upsert_insert(self._db.dialect, bandit_updates)
                    .values(
                        tenant=tenant,
                        point=point,
                        epoch=epoch,
                        decision_id=u.decision_id,
                        action=u.action,
                        reward=float(u.reward),
                        context=_dumps({"x": u.context}),
                        created_at=at,
                        origin=origin,
                    )
                    .on_conflict_do_nothing(
                        index_elements=["tenant", "point", "epoch", "decision_id", "action"]
                    )
                    .returning(_U.id)
                )
                got = conn.execute(statement).scalar_one_or_none()
                if got is not None:
                    claimed.append(
                        BanditUpdate(
                            u.decision_id, u.action, u.reward, u.context, int(got), at, origin
                        )
                    )
        return claimed

    def read(
        self,
        tenant: str,
        point: str,
        epoch: str,
        *,
        after: int,
        seen: int | None = None,
        recent_since: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[BanditUpdate]:
        """Updates with ``id > after``, oldest id first. With ``seen``, ids up to it are read
        again only when created at or after ``recent_since`` (a row can commit after a larger
        id was read); with ``created_before``, only rows created before it."""
        query = (
            sa.select(_U.id, _U.decision_id, _U.action, _U.reward, _U.context, _U.created_at,
                      _U.origin)
            .where(_U.tenant == tenant, _U.point == point, _U.epoch == epoch, _U.id > after)
            .order_by(_U.id)
        )
        if seen is not None and recent_since is not None and seen > after:
            query = query.where(sa.or_(_U.id > seen, _U.created_at >= to_utc(recent_since)))
        if created_before is not None:
            query = query.where(_U.created_at < to_utc(created_before))
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        return [
            BanditUpdate(
                r.decision_id,
                r.action,
                float(r.reward),
                [float(v) for v in orjson.loads(r.context)["x"]],
                int(r.id),
                r.created_at,
                r.origin,
            )
            for r in rows
        ]

    def delete(self, tenant: str, point: str, epoch: str, *, upto: int) -> int:
        """Drop the updates with ``id <= upto`` (compacted into a snapshot long enough ago)."""
        statement = sa.delete(bandit_updates).where(
            _U.tenant == tenant, _U.point == point, _U.epoch == epoch, _U.id <= upto
        )
        with self._db.write() as conn:
            return _rowcount(conn.execute(statement))

    def count(self, tenant: str, point: str) -> int:
        query = sa.select(sa.func.count()).where(_U.tenant == tenant, _U.point == point)
        with self._db.read() as conn:
            return int(conn.execute(query).scalar_one())
