"""A person's behavioural profile, computed from their own events and the tenant's population
artefact: affinities, activity rhythm, RFM, price sensitivity, lifecycle stage and the
customer-base predictions, each with a plain-language reason in English and Russian."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel, Field

from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.users import User
from personify.insights import clv
from personify.insights.history import PURCHASE, PurchaseHistory
from personify.insights.population import Population

HALF_LIFE_DAYS = 30.0
NEW_DAYS = 30
HORIZON_DAYS = 90
TOP_AFFINITIES = 10
EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0, "click": 1.0, "page": 0.5, "screen": 0.5, "add_to_cart": 3.0, "purchase": 5.0,
    "like": 3.0, "rating": 2.0, "share": 2.0, "email_click": 1.0,
}
"""How much one event says about an interest (negative feedback is not an interest)."""
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEKDAYS_RU = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")
PRICE_BANDS = ("budget", "mid", "upper", "premium")


class Reason(BaseModel):
    en: str
    ru: str


class Affinity(BaseModel):
    key: str
    score: float = Field(description="decayed weight (half-life 30 days), 1.0 = the strongest")
    evidence: int = Field(description="events behind it")


class Affinities(BaseModel):
    categories: list[Affinity] = Field(default_factory=list)
    brands: list[Affinity] = Field(default_factory=list)
    tags: list[Affinity] = Field(default_factory=list)
    price_bands: list[Affinity] = Field(default_factory=list)
    reason: Reason


class Rhythm(BaseModel):
    time_zone: str
    hour_of_week: list[int] = Field(description="168 counts, Monday 00:00 first, local time")
    peak_weekday: int | None = None
    peak_hours: list[int] = Field(default_factory=list)
    preferred_channel: str | None = None
    preferred_device: str | None = None
    reason: Reason


class Rfm(BaseModel):
    recency_days: float | None
    frequency: int
    monetary: float
    r: int | None = None
    f: int | None = None
    m: int | None = None
    tier: str | None = None
    reason: Reason


class PriceSensitivity(BaseModel):
    discount_share: float | None
    relative_price: float | None = Field(description="median paid price / category median")
    label: str | None
    reason: Reason


class Lifecycle(BaseModel):
    stage: str
    reason: Reason


class CustomerBase(BaseModel):
    """BG/NBD + Gamma-Gamma predictions (None with the reason when they cannot be made)."""

    probability_alive: float | None = None
    expected_purchases_90d: float | None = None
    expected_order_value: float | None = None
    clv_90d: float | None = None
    reason: Reason


class Score(BaseModel):
    probability: float
    top_reasons: list[dict[str, Any]] = Field(default_factory=list)
    reason: Reason


class Predictions(BaseModel):
    customer_base: CustomerBase
    churn_90d: Score | None = None
    purchase_30d: Score | None = None
    note: Reason | None = None


class BehaviourProfile(BaseModel):
    events_used: int
    first_seen: datetime | None
    last_seen: datetime | None
    affinities: Affinities
    rhythm: Rhythm
    rfm: Rfm
    price_sensitivity: PriceSensitivity
    lifecycle: Lifecycle


def _decay(age_days: float) -> float:
    return float(0.5 ** (max(age_days, 0.0) / HALF_LIFE_DAYS))


def price_band(price: float, edges: Sequence[float]) -> str | None:
    if not edges:
        return None
    return PRICE_BANDS[bisect_right(list(edges), price)]


def _top(scores: Mapping[str, float], evidence: Counter[str]) -> list[Affinity]:
    if not scores:
        return []
    best = max(scores.values())
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_AFFINITIES]
    return [
        Affinity(key=k, score=round(v / best, 4), evidence=evidence[k]) for k, v in ranked if v > 0
    ]


def affinities(
    events: Sequence[Event], items: Mapping[str, Item], population: Population | None,
    now: datetime,
) -> Affinities:
    kinds = ("categories", "brands", "tags", "price_bands")
    scores: dict[str, dict[str, float]] = {k: {} for k in kinds}
    evidence: dict[str, Counter[str]] = {k: Counter() for k in kinds}
    edges = population.price_edges if population else []
    for event in events:
        weight = EVENT_WEIGHTS.get(event.type)
        item = items.get(event.item_id) if event.item_id else None
        if weight is None or item is None:
            continue
        w = weight * _decay((now - event.timestamp).total_seconds() / 86_400)
        keys: dict[str, list[str]] = {
            "categories": list(item.categories),
            "tags": list(item.tags),
            "brands": [str(item.properties[k]) for k in ("brand", "author") if
                       isinstance(item.properties.get(k), str)],
            "price_bands": [],
        }
        price = event.price if event.price is not None else item.price
        band = price_band(price, edges) if price is not None else None
        if band is not None:
            keys["price_bands"].append(band)
        for kind, values in keys.items():
            for value in values:
                scores[kind][value] = scores[kind].get(value, 0.0) + w
                evidence[kind][value] += 1
    out = {k: _top(scores[k], evidence[k]) for k in kinds}
    top = out["categories"][0] if out["categories"] else None
    if top is None:
        reason = Reason(en="No interactions with catalogued items yet.",
                        ru="Пока нет действий с товарами из каталога.")
    else:
        reason = Reason(
            en=f"Strongest interest: {top.key} ({top.evidence} events, recent ones weigh more).",
            ru=f"Главный интерес: {top.key} ({top.evidence} событий, недавние весят больше).",
        )
    return Affinities(**out, reason=reason)


def _zone(user: User | None) -> tuple[ZoneInfo | None, str]:
    name = user.profile.time_zone if user is not None else None
    if name:
        return ZoneInfo(name), name
    return None, "UTC"


def rhythm(events: Sequence[Event], user: User | None) -> Rhythm:
    zone, zone_name = _zone(user)
    hours = [0] * 168
    channels: Counter[str] = Counter()
    devices: Counter[str] = Counter()
    for event in events:
        if event.type == "impression":
            continue
        local = event.context.local_time if event.context.local_time is not None else (
            event.timestamp.astimezone(zone) if zone is not None else event.timestamp)
        hours[local.weekday() * 24 + local.hour] += 1
        if event.context.channel:
            channels[event.context.channel] += 1
        if event.context.device:
            devices[event.context.device] += 1
    total = sum(hours)
    if total == 0:
        return Rhythm(time_zone=zone_name, hour_of_week=hours,
                      reason=Reason(en="No activity yet.", ru="Активности пока нет."))
    by_day = [sum(hours[d * 24:(d + 1) * 24]) for d in range(7)]
    by_hour = [sum(hours[d * 24 + h] for d in range(7)) for h in range(24)]
    peak_day = int(np.argmax(by_day))
    # the 3-hour window (wrapping midnight) with the most activity
    start = max(range(24), key=lambda h: by_hour[h] + by_hour[(h + 1) % 24] + by_hour[(h + 2) % 24])
    window = [start, (start + 1) % 24, (start + 2) % 24]
    share = sum(by_hour[h] for h in window) / total
    span = f"{start:02d}:00-{(start + 3) % 24:02d}:00"
    channel = channels.most_common(1)[0][0] if channels else None
    device = devices.most_common(1)[0][0] if devices else None
    return Rhythm(
        time_zone=zone_name, hour_of_week=hours, peak_weekday=peak_day, peak_hours=window,
        preferred_channel=channel, preferred_device=device,
        reason=Reason(
            en=f"Most active on {WEEKDAYS_EN[peak_day]}; {share:.0%} of activity falls "
               f"{span} ({zone_name}).",
            ru=f"Чаще всего активен(на) в {WEEKDAYS_RU[peak_day]}; {share:.0%} активности "
               f"приходится на {span} ({zone_name}).",
        ),
    )


RF_TIERS: tuple[tuple[str, str, str], ...] = (
    # (pattern on "RF" scores, tier, Russian name); the classic RFM grid
    ("5[45]", "champions", "чемпионы"),
    ("[34][45]", "loyal", "лояльные"),
    ("[45][23]", "potential_loyalists", "потенциально лояльные"),
    ("51", "new_customers", "новые покупатели"),
    ("41", "promising", "перспективные"),
    ("33", "need_attention", "требуют внимания"),
    ("3[12]", "about_to_sleep", "засыпающие"),
    ("[12]5", "cannot_lose", "нельзя потерять"),
    ("[12][34]", "at_risk", "в зоне риска"),
    ("[12][12]", "hibernating", "спящие"),
)


def _score(value: float, edges: Sequence[float], *, reverse: bool = False) -> int:
    s = bisect_right(list(edges), value) + 1  # 1..5
    return 6 - s if reverse else s


def rf_tier(r: int, f: int) -> tuple[str, str]:
    import re

    for pattern, tier, ru in RF_TIERS:
        if re.fullmatch(pattern, f"{r}{f}"):
            return tier, ru
    return "need_attention", "требуют внимания"


def rfm(history: PurchaseHistory, population: Population | None, now: datetime) -> Rfm:
    recency = history.recency_days(now)
    frequency = len(history.days)
    monetary = round(history.spend, 2)
    if recency is None:
        return Rfm(recency_days=None, frequency=0, monetary=0.0,
                   reason=Reason(en="No purchases yet: no RFM scores.",
                                 ru="Покупок пока нет: оценок RFM нет."))
    edges = population.rfm_edges if population else {}
    if not all(edges.get(k) for k in ("recency", "frequency", "monetary")):
        return Rfm(recency_days=recency, frequency=frequency, monetary=monetary,
                   reason=Reason(en="Scores need the batch job (personify insights fit).",
                                 ru="Для оценок нужен пакетный расчёт (personify insights fit)."))
    r = _score(recency, edges["recency"], reverse=True)
    # frequency / monetary: values equal to an edge count to the higher quintile
    f = _score(frequency, edges["frequency"])
    m = _score(monetary, edges["monetary"])
    tier, tier_ru = rf_tier(r, f)
    return Rfm(
        recency_days=recency, frequency=frequency, monetary=monetary, r=r, f=f, m=m, tier=tier,
        reason=Reason(
            en=f"Last purchase {recency:.0f} days ago, {frequency} purchase days, spend "
               f"{monetary:.2f}: R{r} F{f} M{m} (quintiles of all customers) = {tier}.",
            ru=f"Последняя покупка {recency:.0f} дн. назад, дней с покупками: {frequency}, "
               f"сумма {monetary:.2f}: R{r} F{f} M{m} (квинтили всех покупателей) = {tier_ru}.",
        ),
    )


def _discounted(event: Event, item: Item | None) -> bool:
    flag = event.properties.get("discount")
    if isinstance(flag, bool):
        return flag
    if isinstance(flag, int | float):
        return flag > 0
    return bool(
        item is not None and item.price and event.price is not None
        and event.price < 0.95 * item.price
    )


def price_sensitivity(
    events: Sequence[Event], items: Mapping[str, Item], population: Population | None
) -> PriceSensitivity:
    purchases = [e for e in events if e.type == PURCHASE]
    if not purchases:
        return PriceSensitivity(discount_share=None, relative_price=None, label=None,
                                reason=Reason(en="No purchases yet.", ru="Покупок пока нет."))
    discounted = sum(
        _discounted(e, items.get(e.item_id) if e.item_id else None) for e in purchases
    )
    share = discounted / len(purchases)
    ratios: list[float] = []
    reference = population.category_price if population else {}
    for event in purchases:
        item = items.get(event.item_id) if event.item_id else None
        paid = event.price if event.price is not None else (item.price if item else None)
        if paid is None or item is None:
            continue
        refs = [reference[c] for c in item.categories if reference.get(c)]
        ref = median(refs) if refs else None
        if ref:
            ratios.append(paid / ref)
    relative = round(float(median(ratios)), 3) if ratios else None
    if share >= 0.5 or (relative is not None and relative < 0.8):
        label, ru = "bargain_hunter", "охотник за скидками"
    elif relative is not None and relative > 1.25:
        label, ru = "premium", "выбирает дорогое"
    else:
        label, ru = "neutral", "нейтрален(на) к цене"
    rel_en = f", typically pays {relative:.2f}x the category median" if relative else ""
    rel_ru = f", обычно платит {relative:.2f}x от медианы категории" if relative else ""
    return PriceSensitivity(
        discount_share=round(share, 3), relative_price=relative, label=label,
        reason=Reason(en=f"{share:.0%} of purchases at a discount{rel_en}: {label}.",
                      ru=f"{share:.0%} покупок со скидкой{rel_ru}: {ru}."),
    )


def lifecycle(history: PurchaseHistory, population: Population | None, now: datetime) -> Lifecycle:
    """new / active / at_risk / lapsed / returning, from recency relative to the person's own
    typical gap between purchase days (the population's when they have fewer than two gaps)."""
    typical = population.typical_gap_days if population else 30.0
    gaps = history.gaps()
    gap = float(median(gaps)) if len(gaps) >= 2 else typical
    active_limit = max(30.0, 2 * gap)
    risk_limit = max(90.0, 4 * gap)
    first = history.first_seen
    recency = history.recency_days(now)
    if first is None:
        return Lifecycle(stage="new", reason=Reason(en="No activity yet.", ru="Активности нет."))
    age = (now - first).total_seconds() / 86_400
    if age <= NEW_DAYS and len(history.days) <= 1:
        return Lifecycle(stage="new", reason=Reason(
            en=f"First seen {age:.0f} days ago.", ru=f"Впервые замечен(а) {age:.0f} дн. назад."))
    if recency is None:  # browsing, never bought
        seen = (now - history.last_seen).total_seconds() / 86_400 if history.last_seen else age
        stage = "active" if seen <= active_limit else "lapsed"
        return Lifecycle(stage=stage, reason=Reason(
            en=f"No purchase yet; last activity {seen:.0f} days ago.",
            ru=f"Покупок нет; последняя активность {seen:.0f} дн. назад."))
    if recency <= active_limit:
        if gaps and gaps[-1] > risk_limit:
            return Lifecycle(stage="returning", reason=Reason(
                en=f"Bought {recency:.0f} days ago after a {gaps[-1]} day break.",
                ru=f"Купил(а) {recency:.0f} дн. назад после перерыва в {gaps[-1]} дн."))
        stage = "active"
    elif recency <= risk_limit:
        stage = "at_risk"
    else:
        stage = "lapsed"
    limits_en = f"active up to {active_limit:.0f} days, at risk up to {risk_limit:.0f}"
    limits_ru = f"активен до {active_limit:.0f} дн., в зоне риска до {risk_limit:.0f}"
    return Lifecycle(stage=stage, reason=Reason(
        en=f"Last purchase {recency:.0f} days ago; typical gap {gap:.0f} days ({limits_en}).",
        ru=f"Последняя покупка {recency:.0f} дн. назад; обычный интервал {gap:.0f} дн. "
           f"({limits_ru})."))


def customer_base(
    history: PurchaseHistory, population: Population | None, now: datetime
) -> CustomerBase:
    triple = history.triple(now)
    if triple is None:
        return CustomerBase(reason=Reason(
            en="Not enough history: no purchase yet, so no lifetime prediction.",
            ru="Недостаточно истории: покупок нет, прогноза ценности нет."))
    if population is None or population.bgnbd is None:
        return CustomerBase(reason=Reason(
            en="The customer-base model is not fitted yet (personify insights fit).",
            ru="Модель клиентской базы ещё не обучена (personify insights fit)."))
    x, t_x, T = triple
    p_alive = float(clv.probability_alive(population.bgnbd, x, t_x, T))
    expected = float(clv.expected_purchases(population.bgnbd, HORIZON_DAYS, x, t_x, T))
    value: float | None = None
    if population.gamma_gamma is not None:
        value = float(clv.expected_mean_value(
            population.gamma_gamma, x, history.repeat_mean_value()))
    clv_90 = round(expected * value, 2) if value is not None else None
    value_en = f", about {value:.2f} per purchase day" if value is not None else ""
    value_ru = f", около {value:.2f} за день покупок" if value is not None else ""
    return CustomerBase(
        probability_alive=round(p_alive, 4), expected_purchases_90d=round(expected, 3),
        expected_order_value=round(value, 2) if value is not None else None, clv_90d=clv_90,
        reason=Reason(
            en=f"{x} repeat purchase days, the last {T - t_x:.0f} days ago: {p_alive:.0%} likely "
               f"still a customer, {expected:.2f} purchase days expected in 90 days{value_en} "
               "(BG/NBD + Gamma-Gamma).",
            ru=f"Повторных дней покупок: {x}, последний {T - t_x:.0f} дн. назад: вероятность, "
               f"что клиент ещё с нами, {p_alive:.0%}; ожидается {expected:.2f} дн. покупок "
               f"за 90 дн.{value_ru} (BG/NBD + Gamma-Gamma).",
        ),
    )


def behaviour_profile(
    events: Sequence[Event], items: Mapping[str, Item], user: User | None,
    population: Population | None, now: datetime,
) -> BehaviourProfile:
    """``events`` are the person's own (any order); only those up to ``now`` count."""
    events = [e for e in events if e.timestamp <= now]
    history = PurchaseHistory.of(events)
    return BehaviourProfile(
        events_used=len(events), first_seen=history.first_seen, last_seen=history.last_seen,
        affinities=affinities(events, items, population, now),
        rhythm=rhythm(events, user),
        rfm=rfm(history, population, now),
        price_sensitivity=price_sensitivity(events, items, population),
        lifecycle=lifecycle(history, population, now),
    )
