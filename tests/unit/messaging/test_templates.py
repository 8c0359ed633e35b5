"""Template variants, plural forms and the personal variables."""

from __future__ import annotations

import pytest

from personify.domain.errors import InvalidInput
from personify.domain.items import Item
from personify.domain.users import User
from personify.messaging.plurals import plural
from personify.messaging.templates import MessageTemplate, choose_variant, preview

RU_ITEMS = "{{ cart|length|plural('товар', 'товара', 'товаров') }}"
CART = MessageTemplate(
    name="cart",
    default_language="en",
    variants=[
        {
            "language": "en",
            "tone": "formal",
            "subject": "Dear {{ user.name }}",
            "text": "{{ cart|length }} {{ cart|length|plural('item', 'items') }} left",
        },
        {
            "language": "ru",
            "tone": "formal",
            "subject": "Здравствуйте, {{ user.name }}",
            "text": "В корзине {{ cart|length }} " + RU_ITEMS,
        },
        {
            "language": "ru",
            "tone": "informal",
            "subject": "Привет, {{ user.name }}!",
            "preheader": "Скидка {{ discount.percent }}%",
            "text": "У тебя {{ cart|length }} " + RU_ITEMS + ", код {{ discount.code }}",
        },
    ],
)


def _user(language: str | None, tone: str | None = None) -> User:
    props = {"tone": tone} if tone else {}
    return User(user_id="u", profile={"name": "Оля", "language": language}, properties=props)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "товар"),
        (2, "товара"),
        (4, "товара"),
        (5, "товаров"),
        (11, "товаров"),
        (21, "товар"),
        (22, "товара"),
        (112, "товаров"),
    ],
)
def test_russian_plural_forms(count: int, expected: str) -> None:
    assert plural(count, "ru", "товар", "товара", "товаров") == expected


def test_english_plural_forms() -> None:
    assert [plural(n, "en", "item", "items") for n in (0, 1, 2)] == ["items", "item", "items"]


def test_variant_is_chosen_by_language_and_tone() -> None:
    assert choose_variant(CART, _user("ru", "informal")).tone == "informal"
    assert choose_variant(CART, _user("ru-RU")).tone == "formal"
    assert choose_variant(CART, _user("ru", "formal")).subject.startswith("Здравствуйте")
    assert choose_variant(CART, _user("de")).language == "en"  # default language
    assert choose_variant(CART, _user(None, "informal")).language == "en"


@pytest.mark.parametrize(("n", "word"), [(1, "товар"), (3, "товара"), (5, "товаров")])
def test_preview_renders_plural_in_the_persons_language(n: int, word: str) -> None:
    cart = [Item(item_id=f"i{i}") for i in range(n)]
    rendered = preview(
        CART, _user("ru", "informal"), cart=cart, discount={"percent": 10, "code": "AB12"}
    )
    assert rendered.subject == "Привет, Оля!"
    assert rendered.preheader == "Скидка 10%"
    assert rendered.text == f"У тебя {n} {word}, код AB12"
    assert preview(CART, _user("en"), cart=cart).text.endswith(
        f"{n} {'item' if n == 1 else 'items'} left"
    )


def test_recommendation_block_links_and_escaping() -> None:
    template = MessageTemplate(
        name="r",
        recommendations=2,
        variants=[
            {
                "html": '{% for r in recommendations %}<a href="{{ r.url }}">{{ r.title }}</a>'
                "{% endfor %}",
            }
        ],
    )
    items = [
        Item(item_id="a", title="<script>x</script>", properties={"url": "https://shop.example/a"})
    ]
    rendered = preview(template, _user("en"), recommendations=items)
    assert rendered.html == '<a href="https://shop.example/a">&lt;script&gt;x&lt;/script&gt;</a>'
    assert rendered.links["r0"].url == "https://shop.example/a"


def test_invalid_template_errors_name_the_path() -> None:
    with pytest.raises(InvalidInput) as info:
        MessageTemplate.parse({"name": "x", "variants": [{"tone": "rude"}]})
    assert info.value.field == "variants.0.tone"


def test_syntax_error_is_reported_with_line() -> None:
    template = MessageTemplate(name="x", variants=[{"text": "ok\n{% for %}"}])
    with pytest.raises(InvalidInput) as info:
        preview(template, _user("en"))
    assert "line 2" in info.value.message
