"""Networking: a suggested personal introduction naming what two people share, in the
recipient's language (ru / en) and tone (formal / informal)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from babel.lists import format_list

from personify.domain.users import User

SharedTraits = Mapping[str, Sequence[str]]
"""``{"interests": [...], "skills": [...], "goals": [...]}``"""

_KINDS = ("interests", "skills", "goals")

_PHRASES: dict[tuple[str, str], dict[str, str]] = {
    ("en", "formal"): {
        "greeting": "Dear {name},",
        "intro": "may I introduce {sender}?",
        "interests": "you share an interest in {x}",
        "skills": "you both work with {x}",
        "goals": "you are both aiming for {x}",
        "close": "It may be worth a conversation.",
        "none": "You may find a conversation worthwhile.",
        "join": "; ",
    },
    ("en", "informal"): {
        "greeting": "Hi {name}!",
        "intro": "Meet {sender}:",
        "interests": "you're both into {x}",
        "skills": "you both know {x}",
        "goals": "you both want {x}",
        "close": "You should talk!",
        "none": "You might hit it off!",
        "join": ", ",
    },
    ("ru", "formal"): {
        "greeting": "Здравствуйте, {name}!",
        "intro": "Рекомендуем вам познакомиться: {sender}.",
        "interests": "у вас общие интересы: {x}",
        "skills": "общие навыки: {x}",
        "goals": "общие цели: {x}",
        "close": "Возможно, вам будет полезно пообщаться.",
        "none": "Возможно, вам будет интересно пообщаться.",
        "join": "; ",
    },
    ("ru", "informal"): {
        "greeting": "Привет, {name}!",
        "intro": "Познакомься: {sender}.",
        "interests": "вам обоим интересно {x}",
        "skills": "вы оба умеете {x}",
        "goals": "у вас общие цели: {x}",
        "close": "Думаю, вам стоит пообщаться!",
        "none": "Думаю, вы найдёте общий язык!",
        "join": "; ",
    },
}


def shared_traits(a: User, b: User) -> dict[str, list[str]]:
    """Interests, skills and goals both profiles list (case-insensitive, in ``a``'s order)."""
    shared: dict[str, list[str]] = {}
    for kind in _KINDS:
        theirs = {v.casefold() for v in getattr(b.profile, kind)}
        shared[kind] = [v for v in getattr(a.profile, kind) if v.casefold() in theirs]
    return shared


def suggest_introduction(
    sender: User,
    recipient: User,
    shared: SharedTraits | None = None,
    *,
    language: str | None = None,
    tone: str | None = None,
) -> str:
    """The message suggesting ``sender`` to ``recipient``, naming what they share.

    Language: ``language`` or the recipient's profile language (ru / en, default en); tone:
    ``tone`` or the recipient's ``tone`` property (formal / informal, default formal).
    """
    lang = (language or recipient.profile.language or "en").lower()[:2]
    lang = lang if lang in ("en", "ru") else "en"
    chosen = tone or recipient.properties.get("tone")
    style = chosen if chosen in ("formal", "informal") else "formal"
    words = _PHRASES[(lang, str(style))]
    traits = shared if shared is not None else shared_traits(sender, recipient)
    sender_name = sender.profile.name or sender.user_id
    recipient_name = recipient.profile.name or ("there" if lang == "en" else "")
    parts = [
        words[kind].format(x=format_list(list(traits[kind])[:5], locale=lang))
        for kind in _KINDS
        if traits.get(kind)
    ]
    greeting = words["greeting"].format(name=recipient_name).replace(", !", "!").replace(" !", "!")
    intro = words["intro"].format(sender=sender_name)
    if not parts:
        return f"{greeting} {_capital(intro)} {words['none']}"
    body = words["join"].join(parts)
    if intro.endswith((".", "?")):
        body = _capital(body)
    if lang == "en" and style == "formal":
        return f"{greeting} {intro} {body}. {words['close']}"
    return f"{greeting} {_capital(intro)} {body}. {words['close']}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
