"""`manage.py export_preferences`: writes the files, shows a progress bar, documents itself with examples."""

import io

import orjson
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import ProjectFactory, PromptFactory, labeler, ranking_make


@pytest.fixture
def project(db):
    project = ProjectFactory(slug="cmd")
    people = [labeler(project, username=f"l{i}") for i in range(3)]
    for n in range(12):
        prompt = PromptFactory(project=project, category="qa" if n % 2 else "chat", responses=4)
        for person, ranks in zip(people, ([1, 2, 3, 4], [1, 3, 2, 4], [2, 1, 3, 3]), strict=True):
            ranking_make(prompt, person, ranks)
    return project


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("export_preferences", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_writes_train_test_and_metadata_and_prints_a_summary(tmp_path, project):
    out, err = run("--project", "cmd", "--out", str(tmp_path), "--test-ratio", "0.3", "--margin", "rank-diff")

    meta = orjson.loads((tmp_path / "export_meta.json").read_bytes())
    train = (tmp_path / "train.jsonl").read_bytes().splitlines()
    test = (tmp_path / "test.jsonl").read_bytes().splitlines()
    assert len(train) + len(test) == meta["counts"]["pairs"] == 12 * (6 + 6 + 5)  # the third ranking has a tie
    assert meta["counts"]["ties_dropped"] == 12 and meta["options"]["margin"] == "rank-diff"
    assert orjson.loads(train[0])["margin"] >= 1.0
    assert f"Exported {meta['counts']['pairs']} pairs from 36 rankings of 12 prompts" in out
    assert "export: 100%" in err and "12/12" in err  # the tqdm progress bar, on stderr


def test_command_filters_and_strategy_options_reach_the_export(tmp_path, project):
    run("--project", "cmd", "--out", str(tmp_path), "--test-ratio", "0", "--strategy", "majority",
        "--category", "qa", "--columns", "trl", "--no-progress")  # fmt: skip

    meta = orjson.loads((tmp_path / "export_meta.json").read_bytes())
    rows = [orjson.loads(line) for line in (tmp_path / "train.jsonl").read_bytes().splitlines()]
    assert meta["filters"]["categories"] == ["qa"] and meta["strategy"] == "majority"
    assert meta["counts"]["prompts"] == 6 and set(rows[0]) == {"prompt", "chosen", "rejected"}


def test_command_writes_parquet_and_hf_formats(tmp_path, project):
    from datasets import load_from_disk

    run("--project", "cmd", "--out", str(tmp_path / "p"), "--format", "parquet", "--no-progress")
    run("--project", "cmd", "--out", str(tmp_path / "hf"), "--format", "hf", "--no-progress")

    meta = orjson.loads((tmp_path / "hf" / "export_meta.json").read_bytes())
    dataset = load_from_disk(str(tmp_path / "hf"))
    parquet_rows = pq.read_table(tmp_path / "p" / "train.parquet").num_rows
    assert dataset["train"].num_rows == parquet_rows == meta["counts"]["splits"]["train"]["pairs"]


def test_command_rejects_an_unknown_project_and_bad_options(tmp_path, project):
    with pytest.raises(CommandError, match="No project with slug 'nope'"):
        run("--project", "nope", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="test_ratio must be between 0 and 1"):
        run("--project", "cmd", "--out", str(tmp_path), "--test-ratio", "1.5")
    assert not (tmp_path / "export_meta.json").exists()


def test_command_help_lists_examples_and_every_format(capsys):
    with pytest.raises(SystemExit):
        call_command("export_preferences", "--help")

    text = capsys.readouterr().out
    assert "examples:" in text and "python manage.py export_preferences --project" in text
    for option in ("--strategy", "--min-agreement", "--unsafe-file", "--exclude-flags", "--test-ratio", "jsonl",
                   "parquet", "hf", "raw"):  # fmt: skip
        assert option in text
