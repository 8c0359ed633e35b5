"""Message templates: language and tone variants rendered in a limited Jinja2 sandbox.

A :class:`MessageTemplate` holds one :class:`TemplateVariant` per (language, tone); the variant
is chosen per person from ``profile.language`` and the ``tone`` user property (or the template
default). Variables: ``user``, ``person.insights`` (what Personify computed about the person,
:data:`INSIGHT_VARIABLES`), ``recommendations`` (with tracked links), ``cart``, ``discount``,
``event``, ``language``, ``tone`` and the ``plural`` filter.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2 import Template as JinjaTemplate
from jinja2.exceptions import TemplateError
from jinja2.sandbox import SecurityError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from personify.domain.errors import InvalidInput
from personify.domain.items import Item
from personify.domain.users import User
from personify.messaging.plurals import plural
from personify.messaging.records import TrackedLink
from personify.messaging.sandbox import (
    LimitedSandbox,
    RenderBudget,
    RenderLimitExceeded,
    current_budget,
    render_limited,
)

Tone = Literal["formal", "informal"]
MAX_TEMPLATE_CHARS = 100_000
PARTS = ("subject", "preheader", "html", "text")
INSIGHT_VARIABLES: dict[str, str] = {
    "status": "ok; not_allowed without profiling permission; unavailable when not computed",
    "top_interest": "the strongest category affinity",
    "top_interests": "the three strongest categories (a list)",
    "top_brand": "the strongest brand / author affinity",
    "lifecycle": "new, active, at_risk, lapsed or returning",
    "rfm_tier": "champions, loyal, ... hibernating (RFM tier)",
    "price_label": "bargain_hunter, neutral or premium",
    "churn_risk": "probability of no purchase in 90 days (0-1)",
    "purchase_propensity": "probability of a purchase in 30 days (0-1)",
    "clv_90d": "predicted spend in 90 days",
    "p_alive": "BG/NBD probability of being still a customer (0-1)",
    "preferred_channel": "the channel the person uses most",
    "sentiment_last": "sentiment of their newest text: negative, neutral or positive",
    "recent_negative_share": "share of negative texts in the last 30 days (0-1)",
    "dominant_emotion": "joy, sadness, surprise, fear, anger or neutral",
    "keywords": "keywords of their texts (a list)",
    "segments": "ids of the live segments they are in (a list)",
    "cluster": "their automatic cluster id (c1, c2 ...)",
}
"""``person.insights.<name>``: every name is always present (``None`` / empty when unknown), so a
template can test it without failing."""

_LANGUAGE: ContextVar[str] = ContextVar("personify_message_language", default="en")

LinkMaker = Callable[[str, TrackedLink], str]
"""(link_id, link) -> the URL to put in the message (a signed click-redirect URL)."""


class TemplateRenderError(InvalidInput):
    """A template failed to compile or render (syntax, undefined variable, sandbox refusal)."""

    code = "template_error"


class TemplateVariant(BaseModel):
    """The text of one template in one language and tone."""

    model_config = ConfigDict(extra="forbid")

    language: str = Field(default="en", min_length=2, max_length=16)
    tone: Tone = "formal"
    subject: str = Field(default="", max_length=1_000)
    preheader: str = Field(default="", max_length=1_000)
    html: str = Field(default="", max_length=MAX_TEMPLATE_CHARS)
    text: str = Field(default="", max_length=MAX_TEMPLATE_CHARS)


class MessageTemplate(BaseModel):
    """A named template for one channel with its language / tone variants."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
    channel: str = "email"
    default_language: str = "en"
    default_tone: Tone = "formal"
    recommendations: int = Field(default=4, ge=0, le=50, description="items in the block")
    variants: list[TemplateVariant] = Field(min_length=1, max_length=32)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> MessageTemplate:
        """Validate ``data``; errors name the path (``variants.0.tone``)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _invalid(exc, "template") from exc


def _invalid(exc: ValidationError, what: str) -> InvalidInput:
    first = exc.errors()[0]
    path = ".".join(str(p) for p in first["loc"])
    return InvalidInput(
        f"invalid {what} at {path}: {first['msg']}",
        field=path,
        accepted=str(first.get("ctx", {}).get("expected", "see docs/messaging.md")),
        details={
            "errors": [
                {"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()
            ]
        },
    )


def person_language(user: User, template: MessageTemplate) -> str:
    language = (user.profile.language or template.default_language).lower()
    return language.replace("_", "-").split("-")[0]


def person_tone(user: User, template: MessageTemplate) -> Tone:
    tone = user.properties.get("tone")
    return tone if tone in ("formal", "informal") else template.default_tone  # type: ignore[return-value]


def choose_variant(
    template: MessageTemplate, user: User, *, tone: str | None = None
) -> TemplateVariant:
    """Exact (language, tone), else the language in any tone, else the default language.
    ``tone`` replaces the person's own (a message test's variant)."""
    language = person_language(user, template)
    tone = tone if tone in ("formal", "informal") else person_tone(user, template)
    ranked = sorted(
        template.variants,
        key=lambda v: (
            v.language != language,
            v.language != template.default_language,
            v.tone != tone,
            v.tone != template.default_tone,
        ),
    )
    return ranked[0]


@dataclass
class RenderedMessage:
    """What a channel sends: every part rendered, plus the links to track."""

    subject: str
    preheader: str
    html: str
    text: str
    language: str
    tone: str
    links: dict[str, TrackedLink] = field(default_factory=dict)


@dataclass
class MessageInputs:
    """The personal data one message is rendered from."""

    user: User
    message_id: str = "preview"
    recommendation_id: str | None = None
    recommendations: Sequence[Item] = ()
    cart: Sequence[Item] = ()
    discount: dict[str, Any] | None = None
    event: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    unsubscribe_url: str = ""
    open_pixel_url: str = ""
    subject: str | None = None
    """A subject line (template syntax) replacing the variant's (a message test's variant)."""
    tone: str | None = None
    """``formal`` / ``informal`` instead of the person's tone (a message test's variant)."""
    insights: dict[str, Any] | None = None
    """``person.insights`` (keys of :data:`INSIGHT_VARIABLES`); None: not computed."""


def unavailable_insights(status: str = "unavailable") -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(INSIGHT_VARIABLES)
    out.update(status=status, top_interests=[], keywords=[], segments=[])
    return out


def uses_insights(template: MessageTemplate, subject: str | None = None) -> bool:
    """Whether any part of the template (or a replacing subject) reads ``person``: the person's
    insights are computed only for those."""
    sources = [getattr(v, part) for v in template.variants for part in PARTS]
    return any("person" in source for source in [*sources, subject or ""])


def _finalize(value: Any) -> Any:
    return "" if value is None else value


class TemplateRenderer:
    """Compiles (and caches) template variants and renders them within a budget."""

    def __init__(
        self,
        *,
        seconds: float = 0.5,
        max_output_chars: int = 512_000,
        item_url: Callable[[Item], str | None] | None = None,
    ) -> None:
        self.seconds = seconds
        self.max_output_chars = max_output_chars
        self.item_url: Callable[[Item], str | None] = item_url or item_url_for(None)
        self._html_env = self._environment(autoescape=True)
        self._text_env = self._environment(autoescape=False)
        self._cache: dict[tuple[bool, str], JinjaTemplate] = {}
        self._cache_lock = threading.Lock()

    @staticmethod
    def _environment(*, autoescape: bool) -> LimitedSandbox:
        env = LimitedSandbox(
            autoescape=autoescape, undefined=StrictUndefined, finalize=_finalize, cache_size=0
        )
        env.filters["plural"] = _plural_filter
        return env

    def compile(self, source: str, *, html: bool) -> JinjaTemplate:
        if len(source) > MAX_TEMPLATE_CHARS:
            raise TemplateRenderError(
                "template source is too long", field="template", accepted=f"<= {MAX_TEMPLATE_CHARS}"
            )
        key = (html, source)  # a str caches its hash: no digest per render
        compiled = self._cache.get(key)
        if compiled is None:
            env = self._html_env if html else self._text_env
            try:
                compiled = env.from_string(source)
            except TemplateSyntaxError as exc:
                raise TemplateRenderError(
                    f"template syntax error at line {exc.lineno}: {exc.message}",
                    field="template",
                    accepted="Jinja2 syntax",
                ) from exc
            with self._cache_lock:
                if len(self._cache) > 2_000:
                    self._cache.clear()
                self._cache[key] = compiled
        return compiled

    def render_source(self, source: str, variables: dict[str, Any], *, html: bool = False) -> str:
        """Render one template string; every failure is a :class:`TemplateRenderError`."""
        if "{" not in source and "\r" not in source:
            # no expression, statement or comment: the text is the output (Jinja drops one
            # trailing newline)
            return source[:-1] if source.endswith("\n") else source
        compiled = self.compile(source, html=html)
        budget = RenderBudget(seconds=self.seconds, max_output_chars=self.max_output_chars)
        try:
            return render_limited(compiled, variables, budget)
        except RenderLimitExceeded:
            raise
        except (SecurityError, TemplateError) as exc:
            raise TemplateRenderError(
                f"template refused: {exc.__class__.__name__}: {exc}", field="template"
            ) from exc
        except (
            ArithmeticError,
            TypeError,
            ValueError,
            LookupError,
            RecursionError,
            MemoryError,
            AttributeError,
        ) as exc:
            raise TemplateRenderError(
                f"template failed: {exc.__class__.__name__}: {exc}", field="template"
            ) from exc

    def render(
        self, template: MessageTemplate, inputs: MessageInputs, link: LinkMaker | None = None
    ) -> RenderedMessage:
        """Render every part of the person's variant; the links are returned for tracking."""
        variant = choose_variant(template, inputs.user, tone=inputs.tone)
        language = person_language(inputs.user, template)
        tone = inputs.tone if inputs.tone in ("formal", "informal") else person_tone(
            inputs.user, template
        )
        links: dict[str, TrackedLink] = {}
        variables = self.variables(inputs, language, tone, links, link)
        token = _LANGUAGE.set(language)
        try:
            sources = {part: getattr(variant, part) for part in PARTS}
            if inputs.subject:
                sources["subject"] = inputs.subject
            parts = {
                part: self.render_source(sources[part], variables, html=part == "html")
                for part in PARTS
            }
        finally:
            _LANGUAGE.reset(token)
        return RenderedMessage(
            subject=" ".join(parts["subject"].split()),
            preheader=" ".join(parts["preheader"].split()),
            html=parts["html"],
            text=parts["text"],
            language=language,
            tone=tone,
            links=links,
        )

    def variables(
        self,
        inputs: MessageInputs,
        language: str,
        tone: str,
        links: dict[str, TrackedLink],
        link: LinkMaker | None,
    ) -> dict[str, Any]:
        """The template variables; every item URL goes through ``link`` and into ``links``."""

        def tracked(link_id: str, target: TrackedLink) -> str:
            links[link_id] = target
            return link(link_id, target) if link else target.url

        def item_dict(prefix: str, index: int, item: Item) -> dict[str, Any]:
            url = self.item_url(item)
            target = TrackedLink(
                url=url or "",
                item_id=item.item_id,
                recommendation_id=inputs.recommendation_id if prefix == "r" else None,
            )
            return {
                "item_id": item.item_id,
                "title": item.title,
                "description": item.description,
                "categories": list(item.categories),
                "price": item.price,
                "currency": item.currency,
                "image": item.properties.get("image"),
                # an item without a URL gets no link (and no tracked click): never a made-up one
                "url": tracked(f"{prefix}{index}", target) if url else "",
            }

        profile = inputs.user.profile.model_dump()
        user = {
            **profile,
            "user_id": inputs.user.user_id,
            "properties": dict(inputs.user.properties),
        }
        insights = {**unavailable_insights(), **(inputs.insights or {})}
        return {
            "user": user,
            "person": {"insights": insights},
            "recommendations": [
                item_dict("r", i, item) for i, item in enumerate(inputs.recommendations)
            ],
            "cart": [item_dict("c", i, item) for i, item in enumerate(inputs.cart)],
            "discount": dict(inputs.discount or {}),
            "event": dict(inputs.event),
            "language": language,
            "tone": tone,
            "message_id": inputs.message_id,
            "unsubscribe_url": inputs.unsubscribe_url,
            "open_pixel_url": inputs.open_pixel_url,
            **inputs.extra,
        }


def item_url_for(url_template: str | None) -> Callable[[Item], str | None]:
    """An item's link: its ``properties.url``, else ``url_template`` with ``{item_id}``
    filled in (the ``item_url_template`` setting), else None (the item gets no link)."""

    def item_url(item: Item) -> str | None:
        url = item.properties.get("url")
        if isinstance(url, str) and url:
            return url
        if url_template:
            return url_template.replace("{item_id}", quote(item.item_id, safe=""))
        return None

    return item_url


def uses_item_links(template: MessageTemplate) -> bool:
    """Whether any part of the template links items (``r.url`` / ``c.url`` / ``['url']``)."""
    return any(
        re.search(r"\.url\b|\[['\"]url['\"]\]", getattr(v, part))
        for v in template.variants for part in ("html", "text")
    )


def _plural_filter(count: Any, *forms: str) -> str:
    """``{{ n|plural('товар', 'товара', 'товаров') }}`` in the language of the message."""
    current_budget().tick()
    language = _LANGUAGE.get()
    return plural(float(count) if isinstance(count, float) else int(count), language, *forms)


def preview(
    template: MessageTemplate,
    user: User,
    *,
    recommendations: Sequence[Item] = (),
    cart: Sequence[Item] = (),
    discount: dict[str, Any] | None = None,
    event: dict[str, Any] | None = None,
    renderer: TemplateRenderer | None = None,
    insights: dict[str, Any] | None = None,
) -> RenderedMessage:
    """Render ``template`` for ``user`` without sending or tracking anything."""
    inputs = MessageInputs(
        user=user,
        recommendations=recommendations,
        cart=cart,
        discount=discount,
        event=event or {},
        insights=insights,
    )
    return (renderer or TemplateRenderer()).render(template, inputs)
