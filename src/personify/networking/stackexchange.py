"""The Stack Exchange network as networking interactions and profiles.

An answer offers help on the question's tags (the asker seeks them); a comment on a question
engages with the asker's problem (offers); a comment on an answer reacts to the answer (seeks
what its author offered). Profiles: the tags whose words all appear in a person's about-me text
(the text is a 2018-09-02 snapshot; reputation and badges are not used: they leak the future).
"""

from __future__ import annotations

import re

from personify.data.stackexchange import SENetwork
from personify.networking.state import Interaction, Profile

_OFFERED = {"answer": True, "comment_on_question": True, "comment_on_answer": False}
_WORD = re.compile(r"[a-z0-9+#]+")


def interactions(network: SENetwork) -> list[Interaction]:
    return [
        Interaction(
            actor=x.actor,
            target=x.target,
            timestamp=x.timestamp,
            kind=x.kind,
            thread=x.question_id,
            tags=x.tags,
            offered=_OFFERED.get(x.kind),
        )
        for x in network.interactions
    ]


def profiles(network: SENetwork) -> dict[str, Profile]:
    """Declared topics from about-me texts (tags named by words the text contains)."""
    tag_words = {tag: set(_WORD.findall(tag.replace("-", " "))) for tag in network.tags}
    tag_words = {t: w for t, w in tag_words.items() if w and w != {"quantum"}}
    out: dict[str, Profile] = {}
    for pid, person in network.people.items():
        if not person.about_me:
            continue
        words = set(_WORD.findall(person.about_me.lower()))
        topics = {t: 1.0 for t, w in tag_words.items() if w <= words}
        if topics:
            out[pid] = Profile(topics=topics)
    return out
