"""The segment rule language: text and JSON forms agree, bad rules are refused with the position
and what was expected, unknown fields / wrong types / cycles are refused, evaluation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from personify.insights.rules import RuleError, evaluate, parse_text, to_text, validate
from personify.insights.segments import SegmentFiles, SegmentIn, SegmentTracker

NOW = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.mark.parametrize("text", [
    'churn_risk > 0.7 and rfm.tier in ["champions", "loyal"]',
    'viewed_categories_7d has "shoes" and purchases_7d = 0',
    'not segment("vip") or (lifecycle = "returning" and profile.country = "RS")',
    "restricted = false and monetary >= 10 and recency_days < 30.5",
    "profile.industry = 'fintech' and profile.skills has 'python'",
])
def test_text_round_trips_through_json(text: str) -> None:
    rule = parse_text(text)
    assert validate(rule) == rule
    assert parse_text(to_text(rule)) == rule


@pytest.mark.parametrize(("text", "position", "expected"), [
    ("churn_risk >", 12, "a value"),
    ("churn_risk > 0.7 and", 20, "a field name"),
    ("(lifecycle = 'new'", 18, "')'"),
    ("monetary @ 3", 9, "an operator"),
    ("lifecycle = 'new' rfm.r = 3", 18, "'and', 'or'"),
    ("segment(vip)", 8, "a segment id in quotes"),
])
def test_syntax_errors_name_position_and_expectation(
    text: str, position: int, expected: str
) -> None:
    with pytest.raises(RuleError) as caught:
        parse_text(text)
    assert caught.value.details == {"position": position}
    assert expected in str(caught.value.accepted)


@pytest.mark.parametrize(("rule", "field", "accepted"), [
    ({"field": "churn", "op": ">", "value": 1}, "rule.field", "churn_risk"),
    ({"field": "lifecycle", "op": ">", "value": "new"}, "rule.op", "="),
    ({"field": "churn_risk", "op": ">", "value": "high"}, "rule.value", "a number"),
    ({"field": "top_categories", "op": "=", "value": "x"}, "rule.op", "has"),
    ({"and": []}, "rule.and", "a list of rules"),
    ({"and": [{"field": "rfm.r", "op": "in", "value": []}]}, "rule.and[0].value", "a list"),
    ({"bogus": 1}, "rule", "field / op / value"),
])
def test_json_rules_are_validated(rule: dict, field: str, accepted: str) -> None:
    with pytest.raises(RuleError) as caught:
        validate(rule)
    assert caught.value.field == field and accepted in str(caught.value.accepted)


def test_evaluation_and_missing_values() -> None:
    facts = {"churn_risk": 0.8, "rfm.tier": "loyal", "top_categories": {"shoes"}}
    never = lambda _: False  # noqa: E731
    assert evaluate(parse_text('churn_risk > 0.7 and rfm.tier in ["loyal"]'), facts, never)
    assert evaluate(parse_text('top_categories has "shoes"'), facts, never)
    assert not evaluate(parse_text("monetary > 0"), facts, never)  # not known: false
    assert evaluate(parse_text("not monetary > 0"), facts, never)
    assert evaluate(parse_text('segment("x") or churn_risk < 0.1'), facts, lambda s: s == "x")


def test_segments_refuse_unknown_references_and_cycles(tmp_path: Path) -> None:
    files = SegmentFiles(tmp_path, lambda: NOW)
    files.put("t", "big", SegmentIn(text="monetary > 100"))
    with pytest.raises(RuleError, match="unknown segment 'nope'"):
        files.put("t", "a", SegmentIn(text='segment("nope")'))
    files.put("t", "a", SegmentIn(text='segment("big") and frequency > 2'))
    files.put("t", "b", SegmentIn(rule={"segment": "a"}))
    with pytest.raises(RuleError, match="segment cycle: big -> b -> a -> big"):
        files.put("t", "big", SegmentIn(text='segment("b")'))
    with pytest.raises(RuleError, match="cycle"):
        files.put("t", "self", SegmentIn(text='segment("self")'))
    with pytest.raises(RuleError, match="either"):
        files.put("t", "c", SegmentIn())
    with pytest.raises(RuleError, match="bad segment id"):
        files.put("t", "Bad Id", SegmentIn(text="monetary > 1"))
    assert set(files.all("t")) == {"big", "a", "b"} and files.all("other") == {}


def test_tracker_reports_entries_and_exits_after_the_baseline(tmp_path: Path) -> None:
    files = SegmentFiles(tmp_path, lambda: NOW)
    files.put("t", "big", SegmentIn(text="monetary > 100"))
    files.put("t", "vip", SegmentIn(text='segment("big") and frequency >= 3'))
    tracker = SegmentTracker(files, lambda: NOW)
    seen: list[tuple[str, bool]] = []
    tracker.listeners.append(lambda t, u, s, entered, at: seen.append((s, entered)))
    assert tracker.update("t", "u", {"monetary": 50, "frequency": 1}) == {}
    assert seen == []  # the first evaluation is the baseline
    tracker.update("t", "u", {"monetary": 500, "frequency": 3})
    assert seen == [("big", True), ("vip", True)]
    assert tracker.members("t", "vip") == ["u"] and tracker.counts("t") == {"big": 1, "vip": 1}
    tracker.update("t", "u", {"monetary": 500, "frequency": 1})
    assert seen[-1] == ("vip", False)
    assert tracker.forget("t", ["u"]) == 1 and tracker.members("t", "big") == []
