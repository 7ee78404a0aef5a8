"""Exports of the two labeling modes (issue #15), pure pipeline: the ratings dataset (one row per response per
labeler), pairs derived from per-response scores (ties where equal), score differences as the margin, and the
pairwise strength mapped to the margin (Llama 2's 3/2/1/0 by default, or a given mapping)."""

import orjson
import pyarrow.parquet as pq
import pytest

from annotation.exports import ExportOptions, PromptData, RankingData, parse_margins
from annotation.response_form import normalized_form
from tests.annotation.exports.conftest import run_export

FIELDS = normalized_form(
    {"fields": [{"key": "overall", "type": "likert", "label": "Overall", "min": 1, "max": 7},
                {"key": "harmful", "type": "label", "label": "Harmful"},
                {"key": "note", "type": "text", "label": "Note"}]}
)["fields"]  # fmt: skip


def _values(score, harmful=False, note=""):
    return {"overall": score, "harmful": harmful, "note": note}


def rated_prompt() -> PromptData:
    """Three responses a, b, c: labeler 1 ranks a > b > c and scores them 6, 4, 4; labeler 2 ranks b > a > c but
    scores them 3, 5, 6 (c best); labeler 3's ranking was imported and has no form."""
    return PromptData(
        id=1, text="Explain tides.", messages=None, category="science", responses={11: "a", 12: "b", 13: "c"},
        rankings=[
            RankingData(101, 1, {11: 1, 12: 2, 13: 3}, scores={11: 6, 12: 4, 13: 4},
                        ratings={11: _values(6), 12: _values(4, note="vague"), 13: _values(4, harmful=True)}),
            RankingData(102, 2, {11: 2, 12: 1, 13: 3}, scores={11: 3, 12: 5, 13: 6},
                        ratings={11: _values(3), 12: _values(5), 13: _values(6)}),
            RankingData(103, 3, {11: 1, 12: 3, 13: 2}),
        ],
    )  # fmt: skip


def lines(result, split="train"):
    return [orjson.loads(line) for line in (result.out / f"{split}.jsonl").read_bytes().splitlines()]


def test_ratings_dataset_has_one_row_per_response_per_labeler(tmp_path):
    result = run_export(tmp_path, [rated_prompt()], dataset="ratings", rating_fields=FIELDS)
    rows = lines(result)
    assert len(rows) == 9 == result.meta["counts"]["ratings"]
    assert result.meta["counts"]["splits"]["train"] == {"prompts": 1, "rankings": 3, "ratings": 9}
    assert list(rows[0]) == ["prompt", "response", "score", "label_harmful", "text_note", "rank", "prompt_id",
                             "response_id", "ranking_id", "labeler_id", "category"]  # fmt: skip
    assert rows[2] == {"prompt": "Explain tides.", "response": "c", "score": 4, "label_harmful": True,
                       "text_note": "", "rank": 3, "prompt_id": 1, "response_id": 13, "ranking_id": 101,
                       "labeler_id": 1, "category": "science"}  # fmt: skip
    assert rows[1]["text_note"] == "vague"
    imported = [row for row in rows if row["ranking_id"] == 103]
    assert [(r["response_id"], r["rank"], r["score"], r["label_harmful"]) for r in imported] == [
        (11, 1, None, None), (12, 3, None, None), (13, 2, None, None)
    ]  # fmt: skip


def test_ratings_dataset_in_parquet_keeps_types_and_nulls(tmp_path):
    result = run_export(tmp_path, [rated_prompt()], fmt="parquet", dataset="ratings", rating_fields=FIELDS)
    table = pq.read_table(result.out / "train.parquet")
    assert str(table.schema.field("score").type) == "int64" and str(table.schema.field("label_harmful").type) == "bool"
    assert table.column("score").to_pylist() == [6, 4, 4, 3, 5, 6, None, None, None]
    assert table.to_pylist() == lines(run_export(tmp_path / "j", [rated_prompt()], dataset="ratings",
                                                 rating_fields=FIELDS))  # fmt: skip


def test_ratings_respect_the_flag_filter_and_trl_columns(tmp_path):
    prompt = rated_prompt()
    prompt.rankings[1].flags = ["cant_judge"]
    result = run_export(tmp_path, [prompt], dataset="ratings", rating_fields=FIELDS, columns="trl")
    rows = lines(result)
    assert len(rows) == 6 and result.meta["counts"]["rankings_flag_excluded"] == 1
    assert list(rows[0]) == ["prompt", "response", "score", "label_harmful", "text_note", "rank"]


def test_pairs_from_scores_order_by_score_and_tie_where_equal(tmp_path):
    kept = run_export(tmp_path / "k", [rated_prompt()], pairs_from="scores", ties="keep", margin="score-diff",
                      columns="trl")  # fmt: skip
    rows = [(r["chosen"], r["rejected"], r["margin"], r["tie"]) for r in lines(kept)]
    assert rows == [
        ("a", "b", 2.0, False), ("a", "c", 2.0, False), ("b", "c", 0.0, True),  # labeler 1: 6, 4, 4
        ("c", "b", 1.0, False), ("c", "a", 3.0, False), ("b", "a", 2.0, False),  # labeler 2: c 6 > b 5 > a 3
    ]  # fmt: skip
    assert kept.meta["counts"]["rankings_without_scores"] == 1  # the imported ranking has no scores
    dropped = run_export(tmp_path / "d", [rated_prompt()], pairs_from="scores")
    assert dropped.meta["counts"]["pairs"] == 5 and dropped.meta["counts"]["ties_dropped"] == 1


def test_score_differences_as_margin_on_rank_pairs(tmp_path):
    result = run_export(tmp_path, [rated_prompt()], margin="score-diff", columns="trl")
    rows = [(r["chosen"], r["rejected"], r["margin"]) for r in lines(result)]
    assert rows == [
        ("a", "b", 2.0), ("a", "c", 2.0), ("b", "c", 0.0),  # labeler 1
        ("b", "a", 2.0), ("b", "c", 0.0), ("a", "c", 0.0),  # labeler 2 ranks b > a > c but scores c 6: clipped
        ("a", "c", 0.0), ("a", "b", 0.0), ("c", "b", 0.0),  # labeler 3: no scores
    ]  # fmt: skip
    counts = result.meta["counts"]
    assert counts["margin_clipped"] == 2 and counts["margin_missing"] == 3


def pairwise_prompt() -> PromptData:
    return PromptData(
        id=1, text="Capital of France?", messages=None, category="", responses={21: "Paris.", 22: "Lyon."},
        rankings=[
            RankingData(201, 1, {21: 1, 22: 2}, strength=1),  # significantly better
            RankingData(202, 2, {21: 1, 22: 2}, strength=3),  # slightly better
            RankingData(203, 3, {21: 2, 22: 1}, strength=4),  # negligibly better / unsure
            RankingData(204, 4, {21: 1, 22: 1}),  # tie
            RankingData(205, 5, {21: 1, 22: 2}),  # imported: no strength
        ],
    )  # fmt: skip


def test_strength_becomes_the_margin_with_llama2_defaults(tmp_path):
    result = run_export(tmp_path, [pairwise_prompt()], margin="strength", ties="keep")
    rows = [(r["chosen"], r["rejected"], r["margin"], r["tie"], r["ranking_id"]) for r in lines(result)]
    assert rows == [
        ("Paris.", "Lyon.", 3.0, False, 201), ("Paris.", "Lyon.", 1.0, False, 202),
        ("Lyon.", "Paris.", 0.0, False, 203), ("Paris.", "Lyon.", 0.0, True, 204),
        ("Paris.", "Lyon.", 0.0, False, 205),
    ]  # fmt: skip
    assert result.meta["counts"]["margin_missing"] == 1
    assert result.meta["options"]["strength_margins"] is None  # the pure pipeline's default (3, 2, 1, 0)


def test_strength_margins_can_be_overridden_and_ties_dropped(tmp_path):
    result = run_export(tmp_path, [pairwise_prompt()], margin="strength", strength_margins=(1, 2 / 3, 1 / 3, 0))
    assert [round(r["margin"], 4) for r in lines(result)] == [1.0, 0.3333, 0.0, 0.0]
    assert result.meta["counts"]["ties_dropped"] == 1
    assert result.meta["options"]["strength_margins"] == [1.0, 2 / 3, 1 / 3, 0.0]


def test_per_labeler_margins_need_strategy_all_and_margins_are_checked():
    for margin in ("score-diff", "strength"):
        with pytest.raises(ValueError, match=f"margin {margin} is one labeler's judgment per row"):
            ExportOptions(margin=margin, strategy="majority")
    with pytest.raises(ValueError, match="strength_margins must be 4 non-negative numbers"):
        ExportOptions(strength_margins=(3, 2, 1))
    with pytest.raises(ValueError, match="strength_margins"):
        parse_margins("3,2,x,0")
    assert parse_margins("3, 2, 1, 0") == (3.0, 2.0, 1.0, 0.0) and parse_margins("") is None


def test_raw_format_does_not_take_the_ratings_dataset(tmp_path):
    with pytest.raises(ValueError, match="Format raw writes whole rankings"):
        run_export(tmp_path, [rated_prompt()], fmt="raw", dataset="ratings")
