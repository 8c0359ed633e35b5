"""Profile texts: a person's bio read for language and keywords (RU and EN words both), in their
insights, in the rule field ``profile.keywords`` and in the export."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from personify.domain.users import Profile, User
from personify.insights.population import PopulationFiles
from personify.insights.segments import SegmentFiles, SegmentIn, SegmentTracker
from personify.insights.service import InsightsService
from personify.insights.text import default_analyzer
from personify.insights.text_profile import profile_text_insights
from personify.storage.registry import open_stores

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
BIO = ("Разработчик финтех-платформ: пишу на Python, строю платёжные системы и "
       "платёжные шлюзы, люблю машинное обучение.")


def test_bio_keywords_in_both_scripts_and_bad_input() -> None:
    analyzer = default_analyzer()
    found = profile_text_insights(BIO, analyzer)
    assert found is not None and found.language == "ru" and found.source == "profile.bio"
    assert "python" in found.keywords
    assert any(not k.isascii() for k in found.keywords)
    assert profile_text_insights("", analyzer) is None
    assert profile_text_insights("   ", analyzer) is None
    markup = profile_text_insights("<p><b></b></p>&nbsp;" * 500, analyzer)
    assert markup is not None and markup.keywords == []


def test_bio_reaches_insights_segments_and_export(tmp_path: Path) -> None:
    stores = open_stores("memory://")
    try:
        stores.users.upsert("t", [User(user_id="ann", profile=Profile(bio=BIO)),
                                  User(user_id="bob", profile=Profile(bio="I like cats."))])
        files = SegmentFiles(tmp_path, lambda: NOW)
        files.put("t", "pythonistas", SegmentIn(text='profile.keywords has "python"'))
        service = InsightsService(
            events=stores.events, users=stores.users, catalog=stores.catalog,
            populations=PopulationFiles(tmp_path), may_profile=lambda t, u: True,
            tracker=SegmentTracker(files, lambda: NOW), clock=lambda: NOW)
        ann = service.insights("t", "ann")
        assert ann.profile_text is not None and "python" in ann.profile_text.keywords
        assert [s.segment_id for s in ann.segments] == ["pythonistas"]
        assert service.insights("t", "bob").segments == []
        exported = service.export("t", "ann")
        assert exported["profile_text"]["source"] == "profile.bio"
    finally:
        stores.close()
