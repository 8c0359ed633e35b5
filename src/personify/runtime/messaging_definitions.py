"""Templates, journeys and campaigns per tenant: validated on the way in, kept as the documents
their authors wrote (YAML durations such as ``4h`` stay readable), parsed and cached on the way
out. Backed by :class:`personify.storage.sql.messaging_definitions.SqlMessagingDefinitions`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection
from datetime import UTC
from importlib import resources
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from personify.domain.errors import InvalidInput
from personify.messaging.campaigns import Campaign, audience_without
from personify.messaging.journey_definitions import JourneyDefinition, parse_journey
from personify.messaging.message_tests import check_test
from personify.messaging.templates import (
    PARTS,
    MessageTemplate,
    TemplateRenderer,
    uses_item_links,
)
from personify.messaging.webhook_channels import MIN_SECRET_CHARS, WebhookChannel, parse_channel
from personify.storage.sql.messaging_definitions import SqlMessagingDefinitions, StoredDefinition

TEMPLATE, JOURNEY, CAMPAIGN, CHANNEL = "template", "journey", "campaign", "channel"
MESSAGE_TEST = "message_test"
"""A test campaign's winner state: enabled while testing, disabled once decided."""
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
T = TypeVar("T")


def parse_document(raw: bytes, content_type: str | None, *, what: str) -> dict[str, Any]:
    """A JSON or YAML (by ``Content-Type``) mapping; InvalidInput names ``body`` otherwise."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
        data = yaml.safe_load(text) if kind in YAML_TYPES else json.loads(text)
    except (UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            f"the {what} is not valid {'YAML' if kind in YAML_TYPES else 'JSON'}: {exc}",
            field="body",
            accepted="a JSON object, or YAML with Content-Type: application/yaml",
        ) from exc
    if not isinstance(data, dict):
        raise InvalidInput(
            f"the {what} must be a mapping", field="body", accepted="a JSON / YAML object"
        )
    return data


def check_template(template: MessageTemplate, renderer: TemplateRenderer) -> None:
    """Compile every part of every variant so a syntax error is refused at save time."""
    for index, variant in enumerate(template.variants):
        for part in PARTS:
            try:
                renderer.compile(getattr(variant, part), html=part == "html")
            except InvalidInput as exc:
                raise InvalidInput(
                    exc.message, field=f"variants.{index}.{part}", accepted=exc.accepted
                ) from exc


def builtin_template_documents() -> dict[str, dict[str, Any]]:
    """The templates of ``personify/messaging/templates_builtin`` (the ``introduction`` one):
    used while a tenant has stored none of that name."""
    folder = resources.files("personify.messaging") / "templates_builtin"
    found: dict[str, dict[str, Any]] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            document = yaml.safe_load(entry.read_text(encoding="utf-8"))
            found[str(document["name"])] = document
    return found


_BUILTIN_TEMPLATES: dict[str, MessageTemplate] = {}


def builtin_template(name: str) -> MessageTemplate | None:
    if not _BUILTIN_TEMPLATES:
        for key, document in builtin_template_documents().items():
            _BUILTIN_TEMPLATES[key] = MessageTemplate.parse(document)
    return _BUILTIN_TEMPLATES.get(name)


def builtin_journey_documents() -> dict[str, dict[str, Any]]:
    """The example journeys of ``personify/messaging/journeys_builtin`` as written (YAML)."""
    folder = resources.files("personify.messaging") / "journeys_builtin"
    found: dict[str, dict[str, Any]] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            document = yaml.safe_load(entry.read_text(encoding="utf-8"))
            found[str(document["name"])] = document
    return found


class _TtlCache:
    """A per-key cache expiring after ``ttl_s`` so other processes' edits show up soon."""

    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._values: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, load: Callable[[], T]) -> T:
        now = self.clock()
        with self._lock:
            hit = self._values.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            value: T = hit[1]
            return value
        value = load()
        with self._lock:
            self._values[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class MessagingDefinitions:
    """Typed access to one database's messaging definitions (see the module docstring)."""

    def __init__(
        self,
        store: SqlMessagingDefinitions,
        *,
        renderer: TemplateRenderer | None = None,
        ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        item_links_configured: bool = False,
    ) -> None:
        self.store = store
        self.renderer = renderer or TemplateRenderer()
        self.item_links_configured = item_links_configured
        self._cache = _TtlCache(ttl_s, clock)

    def invalidate(self) -> None:
        """Forget cached definitions (called after every write in this process)."""
        self._cache.clear()

    # -- templates ------------------------------------------------------------------------------

    def save_template(self, tenant: str, document: dict[str, Any]) -> MessageTemplate:
        template = MessageTemplate.parse(document)
        check_template(template, self.renderer)
        self.store.put(tenant, TEMPLATE, template.name, document, enabled=True)
        self.invalidate()
        return template

    def template_warnings(self, template: MessageTemplate) -> list[str]:
        """What the author should know at save time: a template linking items while the
        installation has no ``item_url_template`` links only items with ``properties.url``."""
        if uses_item_links(template) and not self.item_links_configured:
            return [
                "item_url_template is not set: items without properties.url get no link (and "
                "no tracked click) in this template; set PERSONIFY_ITEM_URL_TEMPLATE, e.g. "
                "https://shop.example/p/{item_id}"
            ]
        return []

    def template(self, tenant: str, name: str) -> MessageTemplate | None:
        """The stored template, else the built-in one of that name (``introduction``)."""

        def load() -> MessageTemplate | None:
            stored = self.store.get(tenant, TEMPLATE, name)
            return MessageTemplate.parse(stored.body) if stored else builtin_template(name)

        return self._cache.get((TEMPLATE, tenant, name), load)

    def templates(self, tenant: str) -> list[StoredDefinition]:
        return self.store.list(tenant, TEMPLATE)

    # -- journeys -------------------------------------------------------------------------------

    def save_journey(
        self, tenant: str, document: dict[str, Any], *, enabled: bool, source: str = "journey"
    ) -> JourneyDefinition:
        journey = parse_journey(document, source=source)
        self.store.put(tenant, JOURNEY, journey.name, document, enabled=enabled)
        self.invalidate()
        return journey

    def journey(self, tenant: str, name: str) -> tuple[JourneyDefinition, bool] | None:
        stored = self.store.get(tenant, JOURNEY, name)
        return (parse_journey(stored.body, source=name), stored.enabled) if stored else None

    def journeys(self, tenant: str) -> list[StoredDefinition]:
        return self.store.list(tenant, JOURNEY)

    def enabled_journeys(self, tenant: str) -> list[JourneyDefinition]:
        def load() -> list[JourneyDefinition]:
            stored = self.store.list(tenant, JOURNEY, enabled_only=True)
            return [parse_journey(s.body, source=s.name) for s in stored]

        return self._cache.get((JOURNEY, tenant), load)

    def set_journey_enabled(self, tenant: str, name: str, enabled: bool) -> bool:
        changed = self.store.set_enabled(tenant, JOURNEY, name, enabled)
        self.invalidate()
        return changed

    def journey_tenants(self) -> list[str]:
        """Tenants with at least one enabled journey (the ones the clock must tick)."""
        return self._cache.get(("tenants",), lambda: self.store.tenants(JOURNEY))

    # -- webhook channels -----------------------------------------------------------------------

    def save_channel(
        self,
        tenant: str,
        document: dict[str, Any],
        *,
        allow_http: bool,
        allow_hosts: Collection[str] = (),
        reserved: Collection[str] = (),
    ) -> WebhookChannel:
        """Validate and store a tenant's webhook channel. Without ``secret`` the stored
        channel's secret is kept (changing the URL or timeout needs no secret). ``reserved``:
        names configured in the settings, which a tenant cannot shadow."""
        name = str(document.get("name", ""))
        if name in reserved:
            raise InvalidInput(
                f"channel {name!r} is configured in the settings",
                field="name",
                accepted="another name (settings channels change only through the settings)",
            )
        if "secret" not in document:
            stored = self.store.get(tenant, CHANNEL, name)
            if stored is None:
                raise InvalidInput(
                    "a new webhook channel needs a secret",
                    field="secret",
                    accepted=f"a string of at least {MIN_SECRET_CHARS} characters",
                )
            document = {**document, "secret": stored.body["secret"]}
        channel = parse_channel(document, allow_http=allow_http, allow_hosts=allow_hosts)
        body = {
            "name": channel.name,
            "url": channel.url,
            "secret": channel.secret.get_secret_value(),
            "timeout_s": channel.timeout_s,
            "consent_purpose": channel.consent_purpose,
        }
        self.store.put(tenant, CHANNEL, channel.name, body, enabled=True)
        self.invalidate()
        return channel

    def channels(self, tenant: str) -> list[WebhookChannel]:
        """The tenant's own webhook channels (cached for a few seconds)."""

        def load() -> list[WebhookChannel]:
            return [WebhookChannel.model_validate(s.body) for s in self.store.list(tenant, CHANNEL)]

        return self._cache.get((CHANNEL, tenant), load)

    def stored_channels(self, tenant: str) -> list[tuple[WebhookChannel, StoredDefinition]]:
        return [
            (WebhookChannel.model_validate(s.body), s) for s in self.store.list(tenant, CHANNEL)
        ]

    # -- campaigns and deletion -----------------------------------------------------------------

    def parse_campaign(self, document: dict[str, Any]) -> Campaign:
        """Validate a campaign document; InvalidInput names the field (``variants.weight``)."""
        try:
            campaign = Campaign.model_validate(document)
        except ValidationError as exc:
            first = exc.errors()[0]
            path = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(
                f"invalid campaign at {path}: {first['msg']}",
                field=path,
                accepted="see docs/messaging.md (campaigns)",
            ) from exc
        check_test(campaign.variants, campaign.winner)
        if campaign.send_at.tzinfo is None:  # a naive time is taken to be UTC
            campaign = campaign.model_copy(update={"send_at": campaign.send_at.replace(tzinfo=UTC)})
        return campaign

    def save_campaign(self, tenant: str, document: dict[str, Any]) -> Campaign:
        campaign = self.parse_campaign(document)
        self.store.put(tenant, CAMPAIGN, campaign.name, document, enabled=True)
        return campaign

    def message_test(self, tenant: str, name: str) -> StoredDefinition | None:
        """A test campaign's winner state (None: no winner rule)."""
        return self.store.get(tenant, MESSAGE_TEST, name)

    def save_message_test(
        self, tenant: str, name: str, body: dict[str, Any], *, pending: bool
    ) -> None:
        self.store.put(tenant, MESSAGE_TEST, name, body, enabled=pending)

    def campaigns(self, tenant: str) -> list[StoredDefinition]:
        return self.store.list(tenant, CAMPAIGN)

    def forget_in_campaigns(self, tenant: str, ids: Collection[str]) -> int:
        """Erasure: take ``ids`` out of every stored campaign's audience; campaigns changed."""
        changed = 0
        for stored in self.store.list(tenant, CAMPAIGN):
            scrubbed = audience_without(stored.body, ids)
            if scrubbed is not None:
                self.store.put(tenant, CAMPAIGN, stored.name, scrubbed, enabled=stored.enabled)
                changed += 1
        return changed

    def delete(self, tenant: str, kind: str, name: str) -> bool:
        deleted = self.store.delete(tenant, kind, name)
        self.invalidate()
        return deleted
