import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Project, Prompt, Ranking, RankingEntry, Response
from annotation.ranking_import import dense_ranks
from annotation.services.imports import ImportFailed
from annotation.services.ranking_imports import rankings_import
from tests.factories import ProjectFactory

WMT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "wmt23_ende_3raters.jsonl"


def _line(item="i1", annotator="r1", ranks=None, outputs=None, **extra) -> str:
    outputs = outputs or {"sysA": "Hallo Welt", "sysB": "Hallo Welt", "sysC": "Servus"}
    ranks = ranks or {"sysA": 1.5, "sysB": 1.5, "sysC": 3}
    return json.dumps({"item_id": item, "annotator_id": annotator, "source": "Hello world", "outputs": outputs,
                       "ranks": ranks, **extra})  # fmt: skip


def test_dense_ranks_turns_averaged_ties_into_dense_ranks_keeping_order():
    assert dense_ranks({"a": 2.5, "b": 2.5, "c": 1, "d": 4}) == {"a": 2, "b": 2, "c": 1, "d": 3}


def test_rankings_import_keeps_identical_texts_as_separate_responses(db):
    project = ProjectFactory()
    data = "\n".join([_line(annotator="en:r1", scores={"sysA": 0}), _line(annotator="en:r2")]).encode()
    result = rankings_import(project=project, data=data)
    assert (result.prompts_created, result.responses_created, result.rankings_created) == (1, 3, 2)
    assert sorted(Response.objects.values_list("model_name", flat=True)) == ["sysA", "sysB", "sysC"]
    ranking = Ranking.objects.get(labeler__username="en_r1")
    assert ranking.source == "imported" and ranking.metadata["scores"] == {"sysA": 0}
    ranks = {e.response.model_name: e.rank for e in ranking.entries.select_related("response")}
    assert ranks == {"sysA": 1, "sysB": 1, "sysC": 2}
    assert Prompt.objects.get().text == "Hello world"
    assert not ranking.labeler.is_active


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"item_id": "i9"}', "missing field 'annotator_id', 'outputs', 'ranks'"),
        ("{oops", "invalid JSON"),
        (_line(ranks={"sysA": 1, "sysB": 2}), "must rank every output exactly: missing ['sysC']"),
        (_line(ranks={"sysA": 1, "sysB": 0, "sysC": 2}), "is not a number >= 1"),
        (_line(outputs={"sysA": "x"}, ranks={"sysA": 1}), "1 outputs; an item needs 2 to 10"),
        (_line(annotator="r1"), "annotator 'r1' already ranked item 'i1'"),
        (_line(outputs={"sysA": "x", "sysB": "y", "sysC": "z"}), "outputs differ from line 1"),
    ],
)
def test_rankings_import_reports_bad_line_with_number_and_stores_nothing(db, line, reason):
    project = ProjectFactory()
    data = "\n".join([_line(), line]).encode()
    with pytest.raises(ImportFailed) as excinfo:
        rankings_import(project=project, data=data)
    assert excinfo.value.lines[0].startswith("line 2: ") and reason in excinfo.value.lines[0]
    assert Prompt.objects.count() == Ranking.objects.count() == 0


def test_import_rankings_command_loads_wmt23_and_is_idempotent(db, capsys):
    assert WMT.exists(), f"the shared data file is missing: {WMT}"
    call_command("import_rankings", str(WMT), "--project", "wmt")
    call_command("import_rankings", str(WMT), "--project", "wmt")
    out = capsys.readouterr().out
    assert "104 prompts, 1040 responses, 312 rankings" in out and "104 items already present" in out
    assert Project.objects.get(slug="wmt").prompts.count() == 104
    assert RankingEntry.objects.count() == 3120
    assert Ranking.objects.values("labeler").distinct().count() == 10


def test_import_rankings_command_fails_with_line_numbers_and_creates_no_project(db, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_line() + "\nnot json\n")
    with pytest.raises(CommandError, match="line 2: invalid JSON"):
        call_command("import_rankings", str(bad), "--project", "fresh")
    assert not Project.objects.filter(slug="fresh").exists()
