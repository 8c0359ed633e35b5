"""UCI Online Retail (Chen 2015, CC BY 4.0): a streaming reader that maps invoice lines to
Personify domain records, a fast path straight to arrays for evaluation, and a sampler.

Row mapping (``read_online_retail``):

- a customer (``CustomerID``) becomes a ``User`` with ``profile.country`` (their latest country);
- a ``StockCode`` becomes an ``Item``: title = most frequent description among sale lines, price =
  most recent positive ``UnitPrice`` (GBP), categories from description keywords, created_at =
  first sale; postage, fees and manual adjustments (``POST``, ``M``, ``BANK CHARGES`` ...) get
  type ``"service"``;
- an invoice line becomes an ``Event``: ``purchase``, or ``return`` for a cancellation invoice
  (``C...``, quantity stored positive); ``event_id`` is ``"<InvoiceNo>-<n>"`` with ``n`` the line's
  position inside its invoice, so a re-import (or a sample, which keeps whole invoices) yields the
  same ids; ``order_id`` = InvoiceNo;
- lines without ``CustomerID`` are kept as anonymous visitors with ``anonymous_id =
  "invoice:<InvoiceNo>"`` (``anonymous="skip"`` drops them instead);
- stock adjustments (quantity <= 0 outside a cancellation) and bad-debt invoices (``A...``) are
  not customer actions and are skipped.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.domain.errors import InvalidInput
from personify.domain.events import Event, EventType
from personify.domain.items import Item
from personify.domain.users import Profile, User

HEADER = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
CURRENCY = "GBP"
NON_PRODUCT_CODES: frozenset[str] = frozenset(
    {"POST", "DOT", "M", "m", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"}
)
"""Postage, carriage, discounts, manual lines, fees: not products anyone recommends."""

CATEGORY_KEYWORDS: dict[str, tuple[str, ...]] = {
    "christmas": ("CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE"),
    "candles & lights": ("CANDLE", "T-LIGHT", "TLIGHT", "LANTERN", "LIGHTS", "LAMP", "NIGHT LIGHT"),
    "bags": ("BAG", "TOTE", "PURSE", "SHOPPER"),
    "kitchen": ("MUG", "CUP", "PLATE", "BOWL", "JUG", "TEAPOT", "CAKE", "BAKING", "APRON",
                "TEA TOWEL", "LUNCH BOX", "CUTLERY", "SPOON", "NAPKIN", "KITCHEN", "JAR"),
    "cards & wrap": ("CARD", "WRAP", "GIFT TAG", "ENVELOPE", "RIBBON", "TISSUE"),
    "stationery": ("NOTEBOOK", "PENCIL", "PEN ", "ERASER", "STICKER", "CALENDAR", "DIARY"),
    "home decor": ("HEART", "FRAME", "CLOCK", "CUSHION", "DOORMAT", "SIGN", "MIRROR", "VASE",
                   "HOOK", "HANGER", "DRAWER", "WREATH", "GARLAND", "BUNTING", "DECORATION"),
    "toys & kids": ("TOY", "DOLL", "GAME", "PLAYHOUSE", "CHILDREN", "CHILDS", "SPACEBOY",
                    "DOLLY", "JIGSAW", "KIT"),
    "garden": ("GARDEN", "PLANT", "FLOWER POT", "WATERING", "BIRD"),
    "party": ("PARTY", "BALLOON", "PAPER CHAIN", "CAKE CASES", "BIRTHDAY"),
    "jewellery": ("NECKLACE", "EARRINGS", "BRACELET", "RING ", "HAIR", "BROOCH"),
    "storage": ("BOX", "TIN", "BASKET", "CRATE", "STORAGE"),
}
"""Keyword -> category (a line may have several); a coarse catalogue taxonomy for content models."""


def categories_for(description: str) -> list[str]:
    """The categories whose keywords occur in an (upper-case) product description."""
    text = f" {description.upper()} "
    return [name for name, words in CATEGORY_KEYWORDS.items() if any(w in text for w in words)]


@dataclass(frozen=True, slots=True)
class RetailLine:
    """One parsed invoice line. ``line_no`` is its 1-based position inside its invoice."""

    invoice: str
    line_no: int
    stock_code: str
    description: str
    quantity: float
    timestamp: datetime
    unit_price: float
    customer_id: str | None
    country: str

    @property
    def cancelled(self) -> bool:
        return self.invoice.startswith("C")

    @property
    def event_id(self) -> str:
        return f"{self.invoice}-{self.line_no}"


def _open_text(path: str | Path) -> io.TextIOBase:
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _number(text: str) -> float:
    return float(text) if text else 0.0


def iter_lines(path: str | Path, *, limit: int | None = None) -> Iterator[RetailLine]:
    """Stream parsed invoice lines in file order (all of them, nothing filtered)."""
    per_invoice: Counter[str] = Counter()
    times: dict[str, datetime] = {}  # one InvoiceDate per invoice: parse each string once
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        header = tuple(next(reader, ()))
        if header[: len(HEADER)] != HEADER:
            raise InvalidInput(
                f"{path} does not look like Online Retail: header {header!r}",
                field="path",
                accepted="a CSV with header " + ",".join(HEADER),
            )
        for count, row in enumerate(reader):
            if limit is not None and count >= limit:
                return
            invoice = row[0]
            per_invoice[invoice] += 1
            stamp = times.get(row[4])
            if stamp is None:
                stamp = times[row[4]] = datetime.fromisoformat(row[4]).replace(tzinfo=UTC)
            yield RetailLine(
                invoice=invoice,
                line_no=per_invoice[invoice],
                stock_code=row[1].strip(),
                description=row[2].strip(),
                quantity=_number(row[3]),
                timestamp=stamp,
                unit_price=_number(row[5]),
                customer_id=row[6].strip() or None,
                country=row[7].strip(),
            )


def is_customer_action(line: RetailLine) -> bool:
    """Sales and cancellations; stock adjustments and bad-debt lines are not customer actions."""
    if line.invoice.startswith("A") or not line.stock_code:
        return False
    return line.cancelled or line.quantity > 0


def is_product_action(line: RetailLine) -> bool:
    """A customer action on a product: not postage, fees, discounts or manual lines (what the
    demo import and the offline evaluation keep)."""
    return is_customer_action(line) and line.stock_code not in NON_PRODUCT_CODES


def line_to_event(line: RetailLine) -> Event:
    """The domain event of one customer-action line (see the module docstring)."""
    return Event(
        event_id=line.event_id,
        type=EventType.RETURN.value if line.cancelled else EventType.PURCHASE.value,
        user_id=line.customer_id,
        anonymous_id=None if line.customer_id else f"invoice:{line.invoice}",
        item_id=line.stock_code,
        quantity=abs(line.quantity),
        price=line.unit_price if line.unit_price >= 0 else None,
        currency=CURRENCY,
        order_id=line.invoice,
        timestamp=line.timestamp,
        properties={"country": line.country} if line.country else {},
    )


@dataclass
class _ItemStats:
    descriptions: Counter[str] = field(default_factory=Counter)
    price: float | None = None
    price_time: datetime | None = None
    first_sale: datetime | None = None


class RetailEvents(Iterable[Event]):
    """The events of one file, re-read on every iteration (540k records never sit in memory)."""

    def __init__(
        self, path: Path, *, limit: int | None, anonymous: Literal["invoice", "skip"],
        keep: Callable[[RetailLine], bool] | None = None,
    ) -> None:
        self.path, self.limit, self.anonymous = path, limit, anonymous
        self.keep = keep or is_customer_action

    def __iter__(self) -> Iterator[Event]:
        for line in iter_lines(self.path, limit=self.limit):
            if not self.keep(line):
                continue
            if line.customer_id is None and self.anonymous == "skip":
                continue
            yield line_to_event(line)


@dataclass
class OnlineRetailData:
    """Users and items as lists; events as a re-iterable stream (``list(...)`` it if needed)."""

    users: list[User]
    items: list[Item]
    events: RetailEvents


def read_online_retail(
    path: str | Path,
    *,
    limit: int | None = None,
    anonymous: Literal["invoice", "skip"] = "invoice",
    drop_non_products: bool = False,
) -> OnlineRetailData:
    """Read users and items in one streaming pass; events stream lazily from the same file.

    ``limit`` reads only the first ``limit`` lines; ``anonymous`` chooses what happens to lines
    without a CustomerID (kept as ``anonymous_id="invoice:<no>"`` or skipped);
    ``drop_non_products`` skips postage, fees and manual lines (as the ``online-retail`` import
    preset does).
    """
    keep = is_product_action if drop_non_products else is_customer_action
    if anonymous not in ("invoice", "skip"):
        raise InvalidInput(
            f"unknown anonymous policy {anonymous!r}", field="anonymous", accepted="invoice, skip"
        )
    path = Path(path)
    countries: dict[str, tuple[datetime, str]] = {}
    stats: dict[str, _ItemStats] = {}
    for line in iter_lines(path, limit=limit):
        if not keep(line):
            continue
        if line.customer_id is not None:
            seen = countries.get(line.customer_id)
            if seen is None or line.timestamp >= seen[0]:
                countries[line.customer_id] = (line.timestamp, line.country)
        item = stats.setdefault(line.stock_code, _ItemStats())
        if line.cancelled:
            continue
        if line.description:
            item.descriptions[line.description] += 1
        if line.unit_price > 0 and (item.price_time is None or line.timestamp >= item.price_time):
            item.price, item.price_time = line.unit_price, line.timestamp
        if item.first_sale is None or line.timestamp < item.first_sale:
            item.first_sale = line.timestamp
    users = [
        User(user_id=cid, profile=Profile(country=country or None))
        for cid, (_, country) in countries.items()
    ]
    items = [_make_item(code, item) for code, item in stats.items()]
    return OnlineRetailData(
        users, items, RetailEvents(path, limit=limit, anonymous=anonymous, keep=keep)
    )


def _make_item(code: str, stats: _ItemStats) -> Item:
    title = stats.descriptions.most_common(1)[0][0] if stats.descriptions else code
    service = code in NON_PRODUCT_CODES
    return Item(
        item_id=code,
        type="service" if service else "product",
        title=title,
        categories=[] if service else categories_for(title),
        price=stats.price,
        currency=CURRENCY,
        created_at=stats.first_sale,
    )


@dataclass
class RetailLog:
    """The cleaned purchase log as parallel arrays (the evaluation fast path)."""

    invoice: NDArray[np.str_]
    customer: NDArray[np.str_]
    stock_code: NDArray[np.str_]
    quantity: NDArray[np.float32]
    unit_price: NDArray[np.float32]
    timestamp: NDArray[np.float64]
    country: NDArray[np.str_]
    titles: dict[str, str]

    def __len__(self) -> int:
        return len(self.invoice)


def load_purchase_log(
    path: str | Path, *, limit: int | None = None, drop_non_products: bool = False
) -> RetailLog:
    """Purchases cleaned as the dataset README suggests: no cancellations, Quantity > 0, a
    CustomerID present (397,924 lines on the full file). Timestamps are POSIX seconds (UTC)."""
    cols: dict[str, list[object]] = {k: [] for k in ("inv", "cust", "code", "q", "p", "t", "c")}
    descriptions: dict[str, Counter[str]] = {}
    for line in iter_lines(path, limit=limit):
        if line.cancelled or line.quantity <= 0 or line.customer_id is None:
            continue
        if not is_customer_action(line):
            continue
        if drop_non_products and line.stock_code in NON_PRODUCT_CODES:
            continue
        cols["inv"].append(line.invoice)
        cols["cust"].append(line.customer_id)
        cols["code"].append(line.stock_code)
        cols["q"].append(line.quantity)
        cols["p"].append(line.unit_price)
        cols["t"].append(line.timestamp.timestamp())
        cols["c"].append(line.country)
        if line.description:
            descriptions.setdefault(line.stock_code, Counter())[line.description] += 1
    titles = {code: c.most_common(1)[0][0] for code, c in descriptions.items()}
    return RetailLog(
        invoice=np.asarray(cols["inv"], dtype=str),
        customer=np.asarray(cols["cust"], dtype=str),
        stock_code=np.asarray(cols["code"], dtype=str),
        quantity=np.asarray(cols["q"], dtype=np.float32),
        unit_price=np.asarray(cols["p"], dtype=np.float32),
        timestamp=np.asarray(cols["t"], dtype=np.float64),
        country=np.asarray(cols["c"], dtype=str),
        titles=titles,
    )


def log_to_interactions(
    log: RetailLog,
    *,
    weight: Literal["count", "quantity", "log_quantity"] = "count",
    users: Vocabulary | None = None,
    items: Vocabulary | None = None,
) -> Interactions:
    """An ``Interactions`` of the log: one entry per invoice line, weighted as chosen, with item
    features ``title`` / ``categories`` and user feature ``country``."""
    if weight == "count":
        w = np.ones(len(log), dtype=np.float32)
    elif weight == "quantity":
        w = log.quantity
    elif weight == "log_quantity":
        w = np.log1p(log.quantity).astype(np.float32)
    else:
        raise InvalidInput(
            f"unknown weight {weight!r}", field="weight", accepted="count, quantity, log_quantity"
        )
    data = Interactions.from_arrays(
        log.customer.tolist(), log.stock_code.tolist(), w, log.timestamp, users=users, items=items
    )
    titles = [log.titles.get(code, code) for code in data.items.ids]
    data.item_features["title"] = list(titles)
    data.item_features["categories"] = [categories_for(t) for t in titles]
    country: dict[str, str] = dict(zip(log.customer.tolist(), log.country.tolist(), strict=True))
    data.user_features["country"] = [country.get(u, "") for u in data.users.ids]
    return data


def online_retail_interactions(
    path: str | Path,
    *,
    limit: int | None = None,
    weight: Literal["count", "quantity", "log_quantity"] = "count",
    drop_non_products: bool = False,
) -> Interactions:
    """Cleaned purchases straight to an ``Interactions`` (no domain objects built)."""
    log = load_purchase_log(path, limit=limit, drop_non_products=drop_non_products)
    return log_to_interactions(log, weight=weight)


def write_sample(
    src: str | Path, dst: str | Path, *, n_customers: int = 400, seed: int = 0
) -> int:
    """Write a deterministic gzip CSV sample in the source format: ``n_customers`` customers drawn
    with ``seed`` and every line of theirs (whole invoices, so event ids match the full file).
    The gzip header carries no time stamp, so the bytes are reproducible. Returns the number
    of data lines written."""
    customers: set[str] = set()
    for line in iter_lines(src):
        if line.customer_id is not None:
            customers.add(line.customer_id)
    ordered = sorted(customers)
    if n_customers <= 0 or n_customers > len(ordered):
        raise InvalidInput(
            f"n_customers={n_customers} is out of range",
            field="n_customers",
            accepted=f"1..{len(ordered)}",
        )
    rng = np.random.default_rng(seed)
    chosen = {ordered[i] for i in rng.choice(len(ordered), size=n_customers, replace=False)}
    written = 0
    with (
        _open_text(src) as fin,
        open(dst, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        io.TextIOWrapper(zipped, encoding="utf-8", newline="") as fout,
    ):
        reader, writer = csv.reader(fin), csv.writer(fout, lineterminator="\n")
        writer.writerow(next(reader))
        for row in reader:
            if row[6].strip() in chosen:
                writer.writerow(row)
                written += 1
    return written
