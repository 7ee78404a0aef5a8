"""Imports are staged (issue #12, item 9): written in short transactions as rows nobody can see, made visible in one
final transaction, and deleted again when anything fails. Each test stops a real import at a chosen point (the
moment before it commits, or a failure in its Nth write) and looks at the project through the services that hand
out work, count progress, compute agreement and export."""

import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.importing import iter_lines, parse_file, scan_file
from annotation.models import ImportBatch, Prompt, Ranking, RankingEntry, Response
from annotation.selectors import labeler_progress_get, project_progress_get
from annotation.services import imports
from annotation.services.agreement import agreement_report_get
from annotation.services.assignments import assignment_next
from annotation.services.exports import preference_export_meta
from annotation.services.imports import ImportFailed, import_batches_sweep_stale, prompts_import
from tests.factories import ProjectFactory, labeler, ranking_make


def _prompts(n: int, start: int = 0) -> bytes:
    rows = [{"prompt": f"Prompt {i}?", "responses": [f"yes {i}", f"no {i}", f"maybe {i}"]} for i in range(start, n)]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _pairs(n: int) -> bytes:
    rows = [{"prompt": f"Pair {i}?", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(n)]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _totals() -> tuple[int, int, int, int]:
    """Every row, staged or not."""
    return (
        Prompt.all_objects.count(),
        Response.objects.count(),
        Ranking.all_objects.count(),
        RankingEntry.objects.count(),
    )


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(imports, "BATCH_PROMPTS", 4)


def _paused_before_commit(monkeypatch, look):
    """Run `look()` at the moment every batch is staged and the commit has not started yet."""
    real_commit = imports._commit

    def commit(batch, result):
        look(batch)
        return real_commit(batch, result)

    monkeypatch.setattr(imports, "_commit", commit)


def test_staged_prompts_are_never_handed_out_counted_or_exported(db, monkeypatch, small_batches):
    project = ProjectFactory(overlap=2)
    alice, bob = labeler(project), labeler(project)
    prompts_import(project=project, data=_prompts(3), filename="first.jsonl")
    first = ranking_make(Prompt.objects.get(project=project, text="Prompt 0?"), bob, [1, 2, 3])
    Prompt.objects.filter(pk=first.prompt_id).update(ranking_count=1)
    seen = {}

    def look(batch):
        staged = Prompt.all_objects.filter(import_batch=batch)
        assert staged.count() == 10 and set(staged.values_list("staged", flat=True)) == {True}
        assert ImportBatch.objects.get(pk=batch.pk).status == ImportBatch.Status.STAGING
        assert ImportBatch.objects.get(pk=batch.pk).prompts_written == 10
        # the default manager and every related manager leave them out
        assert Prompt.objects.filter(project=project).count() == 3 == project.prompts.count()
        # handed out: only the 3 visible prompts, then nothing, however often alice asks
        handed = []
        while (assignment := assignment_next(project=project, labeler=alice)) is not None:
            handed.append(assignment.prompt_id)
            assignment.status = "submitted"
            assignment.save()
        assert len(handed) == 3 and not staged.filter(pk__in=handed).exists()
        # counted: neither in the manager's progress nor in a labeler's bar
        progress = project_progress_get(project=project)
        assert (progress["prompts"], progress["untouched"], progress["target_rankings"]) == (3, 2, 6)
        assert labeler_progress_get(project=project, labeler=bob)["project_target"] == 6
        seen["agreement"] = agreement_report_get(project=project, n_boot=0)["n_prompts"]
        seen["export"] = preference_export_meta(project=project)["counts"]["prompts"]

    _paused_before_commit(monkeypatch, look)
    result = prompts_import(project=project, data=_prompts(13, start=3), filename="second.jsonl")

    assert seen == {"agreement": 1, "export": 1}
    assert result.prompts_created == 10 and result.responses_created == 30
    batch = ImportBatch.objects.get(pk=result.import_batch)
    assert (batch.status, batch.prompts_created, batch.responses_created) == ("committed", 10, 30)
    assert batch.finished_at is not None
    assert Prompt.objects.filter(project=project).count() == 13
    assert not Prompt.all_objects.filter(staged=True).exists()
    assert project_progress_get(project=project)["prompts"] == 13
    assert assignment_next(project=project, labeler=alice).prompt.import_batch_id == batch.pk


def test_staged_pairwise_rankings_count_nowhere_until_the_commit(db, monkeypatch, small_batches):
    project = ProjectFactory(overlap=1)
    seen = {}

    def look(batch):
        assert Ranking.all_objects.filter(staged=True).count() == 9
        assert Ranking.objects.count() == 0 and project.rankings.count() == 0
        seen["progress"] = project_progress_get(project=project)
        seen["agreement"] = agreement_report_get(project=project, n_boot=0)["n_rankings"]
        seen["export"] = preference_export_meta(project=project)["counts"]["rankings"]
        seen["members"] = project.memberships.count()

    _paused_before_commit(monkeypatch, look)
    result = prompts_import(project=project, data=_pairs(9), filename="pairs.jsonl")

    assert (seen["progress"]["prompts"], seen["progress"]["rankings"], seen["progress"]["per_labeler"]) == (0, 0, [])
    assert seen["agreement"] == 0 and seen["export"] == 0
    assert seen["members"] == 0  # the imported annotator joins with the commit
    assert result.rankings_created == 9
    assert Ranking.objects.filter(project=project).count() == 9
    assert project_progress_get(project=project)["done"] == 9  # overlap 1: each pair complete
    assert project.memberships.get().user.username == imports.IMPORTED_ANNOTATOR


def test_a_failure_while_staging_deletes_what_was_written_and_records_why(db, monkeypatch, small_batches):
    project = ProjectFactory()
    prompts_import(project=project, data=_prompts(2), filename="before.jsonl")
    before = _totals()
    real_write, writes = imports._write, []

    def write(stage, records, result):
        writes.append(len(records))
        if len(writes) == 3:
            raise RuntimeError("disk full")
        return real_write(stage, records, result)

    monkeypatch.setattr(imports, "_write", write)
    with pytest.raises(RuntimeError, match="disk full"):
        prompts_import(project=project, data=_pairs(30), filename="pairs.jsonl")

    assert writes == [4, 4, 4]  # two batches were staged before the failure ...
    assert _totals() == before  # ... and are gone, rankings and entries included
    batch = ImportBatch.objects.get(filename="pairs.jsonl")
    assert batch.status == ImportBatch.Status.FAILED and batch.error == "RuntimeError: disk full"
    assert batch.finished_at is not None


def test_a_failure_in_the_commit_leaves_nothing_visible_or_staged(db, monkeypatch, small_batches):
    project = ProjectFactory()

    def commit(batch, result):
        raise ImportFailed(["the database went away"])

    monkeypatch.setattr(imports, "_commit", commit)
    with pytest.raises(ImportFailed):
        prompts_import(project=project, data=_prompts(10), filename="p.jsonl")

    assert _totals() == (0, 0, 0, 0)
    assert ImportBatch.objects.get().error == "the database went away"


def test_a_bad_last_line_writes_nothing_at_all(db, monkeypatch, small_batches):
    """All or nothing: validation reads the whole file before the first write, so no batch is even started."""
    project = ProjectFactory()
    data = _prompts(40) + b'{"prompt": "late", "responses": ["only one"]}\n'

    with pytest.raises(ImportFailed) as failed:
        prompts_import(project=project, data=data, filename="p.jsonl")

    assert failed.value.lines == ["line 41: 1 responses; a prompt needs 2 to 10."]
    assert _totals() == (0, 0, 0, 0) and not ImportBatch.objects.exists()


def test_a_file_that_changes_between_the_two_passes_is_refused_and_cleaned_up(db, monkeypatch, small_batches):
    project = ProjectFactory()
    stream = io.BytesIO(_prompts(12))
    real_scan = imports.scan_file

    def scan_then_change(*args, **kwargs):
        report = real_scan(*args, **kwargs)
        stream.seek(0, io.SEEK_END)
        stream.write(b"not json\n")
        return report

    monkeypatch.setattr(imports, "scan_file", scan_then_change)
    with pytest.raises(ImportFailed) as failed:
        prompts_import(project=project, file=stream, filename="p.jsonl")

    assert failed.value.lines[0] == imports.IMPORT_CHANGED
    assert "line 13: invalid JSON" in failed.value.lines[1]
    assert _totals() == (0, 0, 0, 0)
    assert ImportBatch.objects.get().status == ImportBatch.Status.FAILED


def test_a_prompt_staged_by_another_unfinished_import_fails_this_one_cleanly(db, monkeypatch, small_batches):
    project = ProjectFactory()
    other = ImportBatch.objects.create(project=project, filename="other.jsonl")
    content_hash = parse_file(_prompts(6, start=5), "p.jsonl").records[0].content_hash
    Prompt.all_objects.create(
        project=project, text="Prompt 5?", content_hash=content_hash, import_batch=other, staged=True
    )

    with pytest.raises(ImportFailed) as failed:
        prompts_import(project=project, data=_prompts(8), filename="p.jsonl")

    assert failed.value.lines == [imports.IMPORT_CONCURRENT.format(line=6)]
    assert Prompt.all_objects.count() == 1  # the other import's row only


def test_stale_staging_imports_are_swept(db):
    """A process killed mid-import leaves staged rows: after STALE_AFTER without a write they are deleted."""
    project = ProjectFactory()
    dead = ImportBatch.objects.create(project=project, filename="dead.jsonl")
    live = ImportBatch.objects.create(project=project, filename="live.jsonl")
    for i, batch in enumerate([dead, dead, live]):
        prompt = Prompt.all_objects.create(
            project=project, text=f"p{i}", content_hash=str(i), import_batch=batch, staged=True
        )
        Response.objects.create(prompt=prompt, text="r", index=0)
    ImportBatch.objects.filter(pk=dead.pk).update(
        updated_at=timezone.now() - imports.STALE_AFTER - timedelta(seconds=1)
    )

    assert import_batches_sweep_stale() == 1

    dead.refresh_from_db()
    assert dead.status == ImportBatch.Status.FAILED and "no progress for 10 minutes" in dead.error
    assert list(Prompt.all_objects.values_list("import_batch", flat=True)) == [live.pk]
    assert Response.objects.count() == 1


def test_the_import_command_streams_the_file_and_a_failed_import_leaves_no_new_project(db, tmp_path):
    from django.core.management import CommandError, call_command

    from annotation.models import Project

    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_bytes(_prompts(7))
    bad.write_bytes(_prompts(7) + b"{}\n")
    call_command("import_prompts", str(good), "--project", "fresh", stdout=io.StringIO())
    assert Prompt.objects.filter(project__slug="fresh").count() == 7

    with pytest.raises(CommandError, match="line 8: missing field 'prompt', 'responses'"):
        call_command("import_prompts", str(bad), "--project", "newer", stdout=io.StringIO())
    assert not Project.objects.filter(slug="newer").exists()


@pytest.mark.parametrize(
    "data",
    [b"", b"a", b"a\n", b"a\r\nb", b"a\rb\r", b"a\r\n\r\n", b"\r\r\n\n", b"x" * 10 + b"\r" + b"\n" + b"y"],
)
@pytest.mark.parametrize("read_bytes", [1, 2, 3, 1 << 20])
def test_streamed_lines_are_numbered_like_splitlines(monkeypatch, data, read_bytes):
    from annotation import importing

    monkeypatch.setattr(importing, "READ_BYTES", read_bytes)
    assert [line for _, line in iter_lines(io.BytesIO(data))] == data.splitlines()


def test_scanning_keeps_no_records_but_reports_like_parsing():
    data = _prompts(5) + _prompts(2) + b"oops\n"
    scanned, parsed = scan_file(io.BytesIO(data), "p.jsonl"), parse_file(data, "p.jsonl")
    assert scanned.records == [] and scanned.n_records == parsed.n_records == len(parsed.records) == 5
    assert scanned.errors == parsed.errors == [(8, "invalid JSON: Expecting value (column 1).")]
    assert scanned.warnings == parsed.warnings and len(scanned.warnings) == 2


def test_the_admin_lists_imports_of_the_managers_projects_only(db, client):
    from tests.factories import manager

    mine, theirs = ProjectFactory(name="Mine"), ProjectFactory(name="Theirs")
    prompts_import(project=mine, data=_prompts(2), filename="mine.jsonl")
    prompts_import(project=theirs, data=_prompts(2), filename="theirs.jsonl")
    client.force_login(manager(mine, is_staff=True))

    page = client.get("/admin/annotation/importbatch/")

    assert page.status_code == 200
    assert "mine.jsonl" in page.content.decode() and "theirs.jsonl" not in page.content.decode()
    other = ImportBatch.objects.get(filename="theirs.jsonl")
    assert client.get(f"/admin/annotation/importbatch/{other.pk}/change/").status_code == 404
