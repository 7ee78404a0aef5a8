"""The export service against the database: what is always left out, each filter, raw rankings, metadata."""

import zipfile
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from annotation import exports
from annotation.models import Membership, Prompt
from annotation.services.agreement import agreement_report_get
from annotation.services.exports import (
    ExportFilters,
    preference_export_archive,
    preference_export_create,
    preference_export_stream,
)
from annotation.services.ranking_imports import rankings_import
from tests.factories import ProjectFactory, PromptFactory, labeler, ranking_make

WMT = Path(__file__).resolve().parents[3] / "shared" / "data" / "wmt23_ende_3raters.jsonl"
NO_FLAG_FILTER = exports.ExportOptions(test_ratio=0.0, exclude_flags=())


@pytest.fixture
def world(db):
    """p1 ranked by a, b, c (and by x, an excluded labeler); p2 a tie by a and an unsafe-flagged ranking by b; p3
    ranked under guidelines v2 in February 2025; p4 (round 2) ranked twice by a (v1 superseded); a ranked gold."""
    project = ProjectFactory(slug="exp")
    w = SimpleNamespace(project=project, a=labeler(project, username="ann"), b=labeler(project, username="bob"),
                        c=labeler(project, username="cem"), x=labeler(project, username="xav"))  # fmt: skip
    Membership.objects.filter(user=w.x).update(excluded=True)
    w.p1 = PromptFactory(project=project, text="Name a prime number.", category="qa", responses=["2", "4", "9"])
    w.p2 = PromptFactory(project=project, text="Pick a colour.", category="qa", responses=["red", "blue", "tea"])
    w.p3 = PromptFactory(project=project, text="Sort a list.", category="code", responses=["sorted()", "x", "y"])
    w.p4 = PromptFactory(project=project, text="Reverse a string.", category="code", round=2, responses=3)
    w.gold = PromptFactory(project=project, text="Gold prompt.", is_gold=True, responses=3)
    w.r1 = [ranking_make(w.p1, u, r) for u, r in ((w.a, [1, 2, 3]), (w.b, [1, 3, 2]), (w.c, [2, 1, 3]))]
    w.excluded = ranking_make(w.p1, w.x, [3, 2, 1])
    w.tie = ranking_make(w.p2, w.a, [1, 1, 2])
    w.unsafe = ranking_make(w.p2, w.b, [1, 2, 3], flags=["unsafe"])
    w.v2 = ranking_make(w.p3, w.a, [3, 2, 1], guideline_version=2, created_at=datetime(2025, 2, 1, tzinfo=UTC))
    w.old = ranking_make(w.p4, w.a, [1, 2, 3], is_current=False, version=1)
    w.current = ranking_make(w.p4, w.a, [3, 2, 1], version=2)
    w.gold_ranking = ranking_make(w.gold, w.a, [1, 2, 3])
    return w


def export(tmp_path, project, options=NO_FLAG_FILTER, fmt="jsonl", **filters):
    result = preference_export_create(project=project, out=tmp_path / "out", fmt=fmt, options=options,
                                      filters=ExportFilters(**filters))  # fmt: skip
    return result, rows(result.out / ("rankings.jsonl" if fmt == "raw" else "train.jsonl"))


def rows(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_golden_lines_for_a_three_response_ranking_from_the_database(tmp_path, world):
    result, _ = export(tmp_path, world.project, exports.ExportOptions(test_ratio=0))
    two, four, nine = world.p1.responses.order_by("index").values_list("id", flat=True)
    text = {two: "2", four: "4", nine: "9"}
    pairs = [
        [(two, four), (two, nine), (four, nine)],  # ann: 2 > 4 > 9
        [(two, nine), (two, four), (nine, four)],  # bob: 2 > 9 > 4
        [(four, two), (four, nine), (two, nine)],  # cem: 4 > 2 > 9
    ]
    expected = b"".join(
        orjson.dumps({"prompt": "Name a prime number.", "chosen": text[c], "rejected": text[r],
                      "prompt_id": world.p1.id, "chosen_id": c, "rejected_id": r, "category": "qa",
                      "ranking_id": ranking.id}) + b"\n"
        for ranking, ranking_pairs in zip(world.r1, pairs, strict=True)
        for c, r in ranking_pairs
    )  # fmt: skip

    assert (result.out / "train.jsonl").read_bytes().startswith(expected)


def test_gold_prompts_excluded_labelers_and_old_versions_never_appear(tmp_path, world):
    result, exported = export(tmp_path, world.project)

    ranking_ids = {row["ranking_id"] for row in exported}
    assert world.gold.id not in {row["prompt_id"] for row in exported}
    assert not {world.excluded.id, world.gold_ranking.id, world.old.id} & ranking_ids
    assert world.current.id in ranking_ids
    assert result.meta["left_out"] == {"gold_prompts": 1, "eval_set_prompts": 0, "excluded_labelers": ["xav"],
                                       "rankings_of_excluded_labelers": 1}  # fmt: skip
    assert [row["username"] for row in result.meta["labelers"]] == ["ann", "bob", "cem"]


def test_flagged_rankings_are_left_out_by_default_or_written_to_the_unsafe_file(tmp_path, world):
    default, exported = export(tmp_path / "a", world.project, exports.ExportOptions(test_ratio=0.0))
    assert world.unsafe.id not in {row["ranking_id"] for row in exported}
    assert default.meta["counts"]["rankings_flag_excluded"] == 1

    result = preference_export_create(project=world.project, out=tmp_path / "b", unsafe_path=tmp_path / "u.jsonl",
                                      options=exports.ExportOptions(test_ratio=0.0))  # fmt: skip
    assert {row["ranking_id"] for row in rows(tmp_path / "u.jsonl")} == {world.unsafe.id}
    assert result.meta["counts"]["unsafe_pairs"] == 3


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"guideline_versions": (2,)}, {"p3"}),
        ({"since": datetime(2025, 1, 1, tzinfo=UTC), "until": datetime(2025, 3, 1, tzinfo=UTC)}, {"p3"}),
        ({"until": datetime(2025, 3, 1, tzinfo=UTC)}, {"p3"}),
        ({"since": datetime(2025, 3, 1, tzinfo=UTC)}, {"p1", "p2", "p4"}),
        ({"categories": ("code",)}, {"p3", "p4"}),
        ({"rounds": (2,)}, {"p4"}),
        ({}, {"p1", "p2", "p3", "p4"}),
    ],
)
def test_database_filters_select_rankings_and_prompts(tmp_path, world, filters, expected):
    _, exported = export(tmp_path, world.project, **filters)

    names = {getattr(world, name).id: name for name in ("p1", "p2", "p3", "p4")}
    assert {names[row["prompt_id"]] for row in exported} == expected


def test_min_labelers_and_min_agreement_filters(tmp_path, world):
    _, three = export(tmp_path / "a", world.project, exports.ExportOptions(test_ratio=0, min_labelers=3))
    _, agreeing = export(tmp_path / "b", world.project, exports.ExportOptions(test_ratio=0, min_agreement=0.55))
    _, strict = export(tmp_path / "c", world.project, exports.ExportOptions(test_ratio=0, min_agreement=0.56))

    assert {row["prompt_id"] for row in three} == {world.p1.id}
    # p1's labeler pairs agree on (2, 9) 3 of 3 times, on (2, 4) and (4, 9) 1 of 3 times: 5/9 = 0.556. Prompts
    # ranked by one labeler have no agreement to check and are left out.
    assert {row["prompt_id"] for row in agreeing} == {world.p1.id}
    assert strict == []


def test_raw_export_has_every_rank_shown_order_model_and_labeler(tmp_path, world):
    result, lines = export(tmp_path, world.project, fmt="raw")

    line = next(line for line in lines if line["ranking_id"] == world.r1[1].id)
    responses = list(world.p1.responses.order_by("index"))
    assert line["labeler"] == "bob" and line["version"] == 1 and line["guideline_version"] == 1
    assert line["shown_order"] == [r.id for r in responses] and line["split"] == "train"
    assert [(r["id"], r["rank"], r["model"]) for r in line["responses"]] == [
        (responses[0].id, 1, "model-0"), (responses[2].id, 2, "model-2"), (responses[1].id, 3, "model-1")
    ]  # fmt: skip
    assert line["created_at"] and "time_spent_s" in line and line["flags"] == []
    assert len(lines) == 7 and result.meta["counts"]["rankings"] == 7


def test_chat_prompts_make_the_export_conversational(tmp_path, world):
    Prompt.objects.filter(pk=world.p3.pk).update(messages=[{"role": "user", "content": "Sort a list."}])

    result, exported = export(tmp_path, world.project, categories=("code",))

    assert result.meta["conversational"] is True
    by_prompt = {row["prompt_id"]: row for row in exported}
    assert by_prompt[world.p3.id]["prompt"] == [{"role": "user", "content": "Sort a list."}]
    assert by_prompt[world.p4.id]["prompt"] == [{"role": "user", "content": "Reverse a string."}]
    assert by_prompt[world.p3.id]["chosen"][0]["role"] == "assistant"


def test_stream_equals_the_file_export(tmp_path, world):
    options = exports.ExportOptions(test_ratio=0.5, exclude_flags=())
    result = preference_export_create(project=world.project, out=tmp_path, options=options)

    for split in ("train", "test"):
        streamed = b"".join(preference_export_stream(project=world.project, split=split, options=options))
        assert streamed == (tmp_path / f"{split}.jsonl").read_bytes()
    assert result.meta["counts"]["splits"]["test"]["prompts"] + result.meta["counts"]["splits"]["train"]["prompts"] == 4


def test_archive_holds_train_test_and_metadata(world):
    archive = preference_export_archive(project=world.project)
    try:
        with zipfile.ZipFile(archive) as zf:
            assert sorted(zf.namelist()) == ["export_meta.json", "test.jsonl", "train.jsonl"]
            meta = orjson.loads(zf.read("export_meta.json"))
        assert meta["project"]["slug"] == "exp" and meta["content_hash"]
    finally:
        import shutil

        shutil.rmtree(archive.parent)


@pytest.mark.skipif(not WMT.exists(), reason="needs ../shared/data/wmt23_ende_3raters.jsonl")
def test_wmt_export_agreement_matches_the_agreement_report(tmp_path, db):
    project = ProjectFactory(slug="wmt")
    rankings_import(project=project, data=WMT.read_bytes())

    result = preference_export_create(project=project, out=tmp_path, options=exports.ExportOptions(test_ratio=0.2))

    report = agreement_report_get(project=project, n_boot=0)
    assert result.meta["agreement"]["pairwise_agreement_ties_dropped"] == pytest.approx(
        report["pairwise_agreement_ties_dropped"], abs=1e-4
    )
    assert result.meta["agreement"]["alpha_ordinal"] == pytest.approx(report["alpha_ordinal"], abs=1e-4)
    counts = result.meta["counts"]
    assert (counts["prompts"], counts["rankings"]) == (104, 312)
    assert counts["pairs"] + counts["ties_dropped"] == 312 * 45  # C(10, 2) response pairs per ranking
    train = {row["prompt_id"] for row in rows(tmp_path / "train.jsonl")}
    test = {row["prompt_id"] for row in rows(tmp_path / "test.jsonl")}
    assert not train & test and len(train | test) == 104
