"""Evaluation sets uploaded after prompts are in the project: the prompts that already match one are found (exact
normalised text or near duplicate), listed on the admin page, in the API and by `manage.py eval_set`, and left out of
every export."""

import json

import orjson
import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation import exports, hygiene
from annotation.models import EvalSet
from annotation.selectors import project_progress_get
from annotation.services.exports import preference_export_create
from annotation.services.hygiene import eval_set_upload
from annotation.services.projects import project_update
from tests.annotation.api._helpers import api_client
from tests.factories import ProjectFactory, PromptFactory, labeler, manager, rank_queue, ranking_make

LONG = (
    "Explain in simple words how a refrigerator keeps food cold, why the back of it gets warm while it runs, what the "
    "compressor and the refrigerant do in each part of the cycle, and why leaving the door open does not cool a room"
)
NEAR = LONG + ", please"  # one word more at the end of a 44-word prompt


@pytest.fixture
def project(db):
    """Four ranked prompts: one matches an evaluation prompt exactly (after normalisation), one nearly, two not."""
    project = ProjectFactory(slug="evals")
    lea = labeler(project, username="lea")
    texts = ["WHAT is the boiling point of water??", NEAR, "Name a prime number.", "Write a haiku about rain."]
    for text in texts:
        ranking_make(PromptFactory(project=project, text=text, responses=["good", "bad"]), lea, [1, 2])
    return project


EVAL_FILE = orjson.dumps({"prompt": "what is the boiling point of water"}) + b"\n" + orjson.dumps(LONG) + b"\n"


def _exported_prompts(project, out) -> list[str]:
    result = preference_export_create(project=project, out=out, options=exports.ExportOptions(test_ratio=0.0))
    return [orjson.loads(line)["prompt"] for line in (result.out / "train.jsonl").read_bytes().splitlines()]


def test_prompts_already_in_the_project_are_found_and_left_out_of_exports(project, tmp_path):
    assert len(_exported_prompts(project, tmp_path / "before")) == 4

    eval_set = eval_set_upload(project=project, name="held-out", filename="eval.jsonl", data=EVAL_FILE)

    by_item = {m["item"]: m for m in eval_set.matches}
    assert sorted(by_item) == [1, 2]
    assert project.prompts.get(pk=by_item[1]["prompt"]).text == "WHAT is the boiling point of water??"
    assert by_item[1]["similarity"] == 1.0
    assert project.prompts.get(pk=by_item[2]["prompt"]).text == NEAR and 0.8 < by_item[2]["similarity"] < 1.0
    assert sorted(_exported_prompts(project, tmp_path / "after")) == [
        "Name a prime number.",
        "Write a haiku about rain.",
    ]
    meta = json.loads((tmp_path / "after" / "export_meta.json").read_text())
    assert meta["left_out"]["eval_set_prompts"] == 2 and meta["counts"]["prompts"] == 2


def test_a_later_rounds_copy_of_a_matched_prompt_is_left_out_too(project, tmp_path):
    # policy samples sent back to labelers copy a prompt's text into a new round after the set was uploaded
    eval_set_upload(project=project, name="held-out", filename="eval.jsonl", data=EVAL_FILE)
    original = project.prompts.get(text="Name a prime number.")
    matched = project.prompts.get(text=NEAR)
    lea = User.objects.get(username="lea")
    for prompt in (original, matched):
        copy = PromptFactory(project=project, text=prompt.text, content_hash=prompt.content_hash, round=2,
                             responses=["new good", "new bad"])  # fmt: skip
        ranking_make(copy, lea, [1, 2])

    exported = _exported_prompts(project, tmp_path)

    assert NEAR not in exported and exported.count("Name a prime number.") == 2


def test_matched_prompts_and_later_copies_are_held_back_from_the_queue(project):
    eval_set_upload(project=project, name="held-out", filename="eval.jsonl", data=EVAL_FILE)
    lea = User.objects.get(username="lea")
    copy = PromptFactory(project=project, text=NEAR, content_hash=project.prompts.get(text=NEAR).content_hash, round=2,
                         responses=["new good", "new bad"])  # fmt: skip
    fresh = PromptFactory(project=project, text="A new question?", round=2, responses=["a", "b"])

    ranking_make(copy, lea, [1, 2])  # ranked before the set came: its rankings are kept, no more are asked for

    handed = [ranking.prompt.text for ranking in rank_queue(project, labeler(project, username="tom"))]

    assert sorted(handed) == ["A new question?", "Name a prime number.", "Write a haiku about rain."]
    assert fresh.pk in [r.prompt_id for r in project.rankings.all()] and copy.rankings.count() == 1
    progress = project_progress_get(project=project)
    assert (progress["held_back"], progress["in_progress"], progress["untouched"]) == (3, 3, 0)


def test_replacing_a_set_releases_the_prompts_it_no_longer_matches(project):
    eval_set_upload(project=project, name="held-out", filename="eval.jsonl", data=EVAL_FILE)
    assert set(project.prompts.filter(eval_matched=True).values_list("text", flat=True)) == {
        "WHAT is the boiling point of water??", NEAR,
    }  # fmt: skip

    eval_set_upload(project=project, name="held-out", filename="eval.txt", data=b"Name a prime number\n")

    assert list(project.prompts.filter(eval_matched=True).values_list("text", flat=True)) == ["Name a prime number."]
    tom = labeler(project, username="tom")
    assert "Name a prime number." not in [r.prompt.text for r in rank_queue(project, tom)]
    assert project_progress_get(project=project)["held_back"] == 1


def test_changing_the_threshold_matches_the_sets_again(project, tmp_path):
    eval_set_upload(project=project, name="held-out", filename="eval.jsonl", data=EVAL_FILE)

    project_update(project=project, near_dup_threshold=0)  # exact texts only: the near duplicate no longer matches

    assert [m["item"] for m in EvalSet.objects.get().matches] == [1]
    assert list(project.prompts.filter(eval_matched=True).values_list("text", flat=True)) == [
        "WHAT is the boiling point of water??"
    ]
    assert NEAR in _exported_prompts(project, tmp_path / "exact")

    project_update(project=project, near_dup_threshold=0.8)

    assert [m["item"] for m in EvalSet.objects.get().matches] == [1, 2]
    assert NEAR not in _exported_prompts(project, tmp_path / "near")


def test_replacing_a_set_by_name_recomputes_its_matches(project, tmp_path):
    eval_set_upload(project=project, name="held-out", filename="eval.jsonl", data=EVAL_FILE)

    replaced = eval_set_upload(project=project, name="held-out", filename="eval.txt", data=b"Name a prime number\n")

    assert EvalSet.objects.count() == 1
    assert [project.prompts.get(pk=m["prompt"]).text for m in replaced.matches] == ["Name a prime number."]
    assert len(_exported_prompts(project, tmp_path)) == 3


def test_with_the_near_duplicate_check_off_only_exact_texts_match(project):
    project.near_dup_threshold = 0
    project.save()

    eval_set = eval_set_upload(project=project, name="held-out", filename="eval.jsonl", data=EVAL_FILE)

    assert [m["item"] for m in eval_set.matches] == [1]


def test_matches_are_the_same_whatever_the_batch():
    index = hygiene.EvalIndex(0.8)
    index.add_set("s", ["what is the boiling point of water", LONG])
    items = [(i, text) for i, text in enumerate(["x y z", NEAR, "Boiling point of water?", "WHAT is the boiling "
                                                  "point of water", LONG, "unrelated words here"])]  # fmt: skip

    one_by_one = [(key, *found) for key, text in items if (found := index.query(text))]

    assert list(index.matches(items, batch=2)) == list(index.matches(items)) == one_by_one
    assert [key for key, *_ in one_by_one] == [1, 3, 4]


# --- the admin page, the API and the command ------------------------------------------------------------------------


def _page(project) -> str:
    return reverse("admin:annotation_project_evalsets", args=[project.pk])


def test_admin_page_uploads_a_set_and_lists_the_matching_prompts_escaped(project, client):
    PromptFactory(project=project, text="<script>alert(1)</script> name a prime")
    client.force_login(manager(project, is_staff=True))
    data = b"<script>alert(1)</script> name a prime\n"

    page = client.post(_page(project), {"name": "xss", "file": SimpleUploadedFile("e.txt", data)})

    html = page.content.decode()
    assert page.status_code == 200 and 'id="eval-set-matches"' in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; name a prime" in html
    assert "1 of the project's prompts match one of them" in " ".join(html.split())
    listing = "".join(client.get(_page(project)).content.decode().split())
    assert "<td>xss</td><td>e.txt</td><td>1</td><td>1</td>" in listing  # name, file, prompts, matching prompts


def test_admin_page_reports_bad_lines_and_stores_nothing(project, client):
    client.force_login(manager(project, is_staff=True))

    page = client.post(_page(project), {"name": "bad", "file": SimpleUploadedFile("e.jsonl", b'"ok"\n{"x": 1}\n')})

    assert page.status_code == 400
    assert "line 2: missing field &#x27;prompt&#x27;." in page.content.decode()
    assert not EvalSet.objects.exists()


def test_admin_page_of_another_managers_project_is_404(project, client):
    theirs = ProjectFactory(slug="theirs")
    client.force_login(manager(project, is_staff=True))

    assert client.get(_page(theirs)).status_code == 404
    upload = SimpleUploadedFile("e.txt", b"Name a prime number\n")
    assert client.post(_page(theirs), {"name": "x", "file": upload}).status_code == 404
    assert not EvalSet.objects.exists()


def test_admin_project_page_links_to_the_evaluation_sets(project, client):
    client.force_login(manager(project, is_staff=True))

    page = client.get(reverse("admin:annotation_project_change", args=[project.pk])).content.decode()

    assert f'href="{_page(project)}">Evaluation sets</a>' in page


def test_api_lists_the_matches(project):
    boss = manager(project)
    upload = {"name": "held-out", "file": SimpleUploadedFile("eval.jsonl", EVAL_FILE)}

    created = api_client(boss).post("/api/projects/evals/eval-sets/", upload, format="multipart").json()

    assert created["prompts"] == 2 and created["matched_prompts"] == 2
    assert sorted(m["item"] for m in created["matches"]) == [1, 2]
    assert api_client(boss).get("/api/projects/evals/eval-sets/").json()[0]["matched_prompts"] == 2


def test_command_uploads_lists_and_refuses_bad_files(project, tmp_path, capsys):
    good, bad = tmp_path / "heldout.jsonl", tmp_path / "bad.jsonl"
    good.write_bytes(EVAL_FILE)
    bad.write_bytes(b'"ok"\nnot json\n')

    call_command("eval_set", str(good), "--project", "evals")
    call_command("eval_set", "--list", "--project", "evals")
    out = capsys.readouterr().out

    assert "Stored 'heldout': 2 prompts." in out
    assert "2 of the project's prompts match one of them; they are left out of exports:" in out
    assert "heldout\t2 prompts\t2 matching project prompts\theldout.jsonl" in out
    with pytest.raises(CommandError, match=r"(?s)bad.jsonl: nothing was stored.*line 2:"):
        call_command("eval_set", str(bad), "--project", "evals", "--name", "other")
    with pytest.raises(CommandError, match="No project with the slug 'nope'"):
        call_command("eval_set", str(good), "--project", "nope")
    assert list(EvalSet.objects.values_list("name", flat=True)) == ["heldout"]
