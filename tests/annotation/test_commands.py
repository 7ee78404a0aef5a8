"""Management commands: import_prompts and load_demo, run against the real (test) database."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.demo import DEMO_SLUG, GUIDELINES
from annotation.management.commands.import_prompts import Command as ImportPromptsCommand
from annotation.models import Guideline, Membership, Project, Prompt, Ranking, Response
from annotation.services.assignments import assignment_next
from annotation.services.rankings import ranking_submit
from tests.factories import ProjectFactory

DEMO_PASSWORD = "test-demo-pass"
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


def _run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _manage(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


# --- import_prompts -----------------------------------------------------------------------------------------------


def test_import_prompts_creates_the_missing_project_with_the_given_name_and_prints_a_summary(db):
    out = _run("import_prompts", str(DATA / "prompts_valid.jsonl"), "--project", "rlhf-round-1", "--name", "Round 1")

    project = Project.objects.get(slug="rlhf-round-1")
    assert project.name == "Round 1"
    assert project.guidelines.count() == 1
    assert Prompt.objects.filter(project=project).count() == 3
    assert "Project 'rlhf-round-1' (created), prompts file:" in out
    assert "prompts created:    3" in out
    assert "responses created:  8" in out
    assert "rankings created:   0" in out
    assert "duplicates skipped: 0" in out


def test_import_prompts_into_an_existing_project_reports_duplicates_and_warnings(db):
    project = ProjectFactory(slug="existing", name="Existing")
    _run("import_prompts", str(DATA / "prompts_valid.csv"), "--project", "existing")

    out = _run("import_prompts", str(DATA / "prompts_valid.csv"), "--project", "existing", "--name", "Ignored")

    project.refresh_from_db()
    assert project.name == "Existing"
    assert Prompt.objects.filter(project=project).count() == 2
    assert "Project 'existing' (existing)" in out
    assert "prompts created:    0" in out
    assert "duplicates skipped: 2" in out
    assert "line 2: exact duplicate of a prompt already in the project: skipped." in out


def test_import_prompts_pairwise_file_creates_imported_rankings(db):
    out = _run("import_prompts", str(DATA / "pairwise.jsonl"), "--project", "pairs", "--kind", "pairwise")

    assert "pairwise file" in out and "rankings created:   3" in out
    assert Ranking.objects.filter(project__slug="pairs", source=Ranking.Source.IMPORTED).count() == 3


def test_import_prompts_with_bad_lines_fails_with_every_line_number_and_stores_nothing(db):
    with pytest.raises(CommandError) as failed:
        _run("import_prompts", str(DATA / "bad_many.jsonl"), "--project", "brand-new")

    message = str(failed.value)
    assert message.startswith("4 error(s) in bad_many.jsonl; nothing was imported:")
    for line in ("line 2: missing field 'prompt'.", "line 4: 'prompt' is empty.", "line 5: invalid JSON", "line 6: 1"):
        assert line in message
    assert not Project.objects.filter(slug="brand-new").exists()  # the project it would have created is rolled back
    assert Prompt.objects.count() == 0 and Response.objects.count() == 0


def test_import_prompts_error_exits_with_status_1_and_prints_the_lines_on_stderr(db, capsys):
    with pytest.raises(SystemExit) as exited:
        ImportPromptsCommand().run_from_argv(
            ["manage.py", "import_prompts", str(DATA / "bad_rows.csv"), "--project", "csv-project"]
        )

    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "line 3: more values than header columns." in err
    assert "line 5: 1 responses; a prompt needs 2 to 10." in err
    assert not Project.objects.filter(slug="csv-project").exists()


def test_import_prompts_missing_file_is_a_command_error(db, tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        _run("import_prompts", str(tmp_path / "nope.jsonl"), "--project", "x")
    assert Project.objects.count() == 0


def test_import_prompts_invalid_slug_is_a_command_error(db):
    with pytest.raises(CommandError, match="slug"):
        _run("import_prompts", str(DATA / "prompts_valid.jsonl"), "--project", "not a slug!")
    assert Project.objects.count() == 0


def test_import_prompts_help_shows_formats_and_examples():
    result = _manage("import_prompts", "--help")

    assert result.returncode == 0, result.stderr
    assert "--project SLUG" in result.stdout
    assert "--kind {auto,prompts,pairwise}" in result.stdout
    assert "examples:" in result.stdout
    assert "python manage.py import_prompts prompts.jsonl --project helpfulness" in result.stdout
    assert "CSV     header: prompt, response_1 .. response_10" in result.stdout  # the epilog keeps its layout


# --- load_demo ----------------------------------------------------------------------------------------------------


def _demo_counts() -> dict:
    return {
        "users": get_user_model().objects.count(),
        "projects": Project.objects.count(),
        "guidelines": Guideline.objects.count(),
        "memberships": Membership.objects.count(),
        "prompts": Prompt.objects.count(),
        "responses": Response.objects.count(),
    }


def test_load_demo_creates_users_project_guidelines_members_and_prompts(db, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", DEMO_PASSWORD)
    out = _run("load_demo")

    users = get_user_model().objects
    admin = users.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.check_password(DEMO_PASSWORD)
    maria = users.get(username="maria")
    assert maria.is_staff and not maria.is_superuser
    project = Project.objects.get(slug=DEMO_SLUG)
    assert (project.name, project.overlap) == ("Helpful assistant responses", 3)
    assert Ranking.objects.count() == 0  # simulated rankings only with --with-rankings
    roles = dict(project.memberships.values_list("user__username", "role"))
    assert roles == {"maria": "manager", "alice": "labeler", "bob": "labeler", "carol": "labeler"}
    for name in ("alice", "bob", "carol"):
        labeler = users.get(username=name)
        assert labeler.check_password(DEMO_PASSWORD) and not labeler.is_staff
    guideline = project.guidelines.get()
    assert guideline.text == GUIDELINES
    for topic in ("Helpfulness", "Honesty", "Harmlessness", "## Ties", "## Flags", "## Examples"):
        assert topic in guideline.text
    prompts = Prompt.objects.filter(project=project)
    assert prompts.count() >= 24
    assert all(p.responses.count() == 4 for p in prompts)
    assert {"qa", "generation", "summarization", "coding", "advice"} <= set(prompts.values_list("category", flat=True))
    chat = prompts.exclude(messages=None).get()
    assert sum(m["role"] == "user" for m in chat.messages) >= 2
    models = set(Response.objects.filter(prompt__project=project).values_list("model_name", flat=True))
    assert {"policy-v1", "sft-base"} <= models and "" not in models
    assert "http://127.0.0.1:8000/" in out
    for name in ("admin", "maria", "alice", "bob", "carol"):
        assert f"{name}" in out
    assert DEMO_PASSWORD in out


def test_load_demo_twice_gives_the_same_counts(db):
    _run("load_demo")
    first = _demo_counts()

    out = _run("load_demo")

    assert _demo_counts() == first
    assert f"already present, skipped: {first['prompts']}" in out


def test_load_demo_reset_rebuilds_the_project_without_its_rankings(db):
    _run("load_demo")
    project = Project.objects.get(slug=DEMO_SLUG)
    alice = get_user_model().objects.get(username="alice")
    assignment = assignment_next(project=project, labeler=alice)
    ranking_submit(
        labeler=alice, assignment_id=assignment.id, ranks={rid: i + 1 for i, rid in enumerate(assignment.shown_order)}
    )
    counts = _demo_counts()

    _run("load_demo", "--reset")

    assert _demo_counts() == counts
    assert Ranking.objects.count() == 0
    assert Project.objects.get(slug=DEMO_SLUG).pk != project.pk


def test_load_demo_takes_the_password_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "from-the-env-123")

    out = _run("load_demo")

    assert get_user_model().objects.get(username="bob").check_password("from-the-env-123")
    assert "from-the-env-123" in out


def test_load_demo_help_shows_examples():
    result = _manage("load_demo", "--help")

    assert result.returncode == 0, result.stderr
    assert "--reset" in result.stdout
    assert "python manage.py load_demo --reset" in result.stdout
    assert "python manage.py load_demo --with-rankings" in result.stdout
    assert "python manage.py run_chain --project demo --foreground" in result.stdout
