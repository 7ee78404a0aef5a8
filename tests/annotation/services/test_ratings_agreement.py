"""Agreement on the per-response form from the database: the report (API, page, command) gives, for the score,
Krippendorff's alpha at the interval level and, for each yes/no label, alpha nominal and Fleiss' kappa, equal to
the `krippendorff` package on the same ratings; gold prompts and excluded labelers are left out."""

import io
import json

import krippendorff
import numpy as np
import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from annotation.agreement.ratings import label_kappa
from annotation.models import Membership, Prompt
from annotation.services.agreement import agreement_report_get
from annotation.services.assignments import assignment_next
from annotation.services.projects import project_create
from annotation.services.rankings import ranking_submit
from tests.annotation.api._helpers import api_client
from tests.factories import PromptFactory, labeler, manager

pytestmark = pytest.mark.django_db

FORM = {"fields": [
    {"key": "quality", "type": "likert", "label": "Quality <b>&</b>", "min": 1, "max": 5},
    {"key": "wrong", "type": "label", "label": "Factually wrong"},
    {"key": "why", "type": "text", "label": "Why"},
]}  # fmt: skip
# score and label per labeler, for responses (prompt 0: index 0, 1), (prompt 1: index 0, 1), (prompt 2: ...)
SCORES = {"ann": [5, 2, 4, 1, 3, 3], "bob": [4, 2, 5, 1, 3, 2], "cat": [5, 1, 2, 4, 3, 3], "ex": [1, 5, 1, 5, 1, 5]}
WRONG = {"ann": [0, 1, 0, 1, 0, 0], "bob": [0, 1, 0, 1, 0, 1], "cat": [0, 0, 1, 1, 0, 0], "ex": [1, 0, 1, 0, 1, 0]}


@pytest.fixture
def rated():
    project = project_create(name="Rated", slug="rated", response_form=FORM, overlap=4, gold_rate=1.0)
    prompts = [PromptFactory(project=project, responses=2) for _ in range(3)]
    gold = PromptFactory(project=project, responses=2, is_gold=True, gold_ranks={})
    for name in SCORES:
        user = labeler(project, username=name)
        for assignment in iter(lambda u=user: assignment_next(project=project, labeler=u), None):
            position = prompts.index(assignment.prompt) if assignment.prompt in prompts else None
            index = dict(assignment.prompt.responses.values_list("id", "index"))
            ratings = {}
            for rid in assignment.shown_order:
                at = None if position is None else 2 * position + index[rid]
                score = 1 if at is None else SCORES[name][at]  # gold: everyone disagrees wildly, left out anyway
                ratings[rid] = {"quality": score, "wrong": bool(at is not None and WRONG[name][at]),
                                "why": "because" if name == "ann" else ""}  # fmt: skip
            ranks = {rid: index[rid] + 1 for rid in assignment.shown_order}
            ranking_submit(labeler=user, assignment_id=assignment.id, ranks=ranks, ratings=ratings)
    Membership.objects.filter(project=project, user__username="ex").update(excluded=True)
    assert Prompt.objects.get(pk=gold.pk).rankings.count() == 4
    return project


def expected(values: dict, level: str) -> float:
    matrix = np.array([values[name] for name in ("ann", "bob", "cat")], dtype=np.float64)
    return krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)


def test_report_gives_alpha_for_the_score_and_each_label(rated):
    form = agreement_report_get(project=rated, n_boot=50)["response_form"]
    assert (form["n_ratings"], form["n_labelers"]) == (18, 3)  # 3 prompts x 2 responses x 3 labelers
    score = form["score"]
    assert score["field"] == "quality" and score["scale"] == [1, 5] and score["n_units"] == 6
    assert score["alpha_interval"] == pytest.approx(expected(SCORES, "interval"), abs=1e-4)
    assert score["alpha_ordinal"] == pytest.approx(expected(SCORES, "ordinal"), abs=1e-4)
    assert score["mean"] == pytest.approx(np.mean(SCORES["ann"] + SCORES["bob"] + SCORES["cat"]), abs=1e-4)
    assert score["interval"][0] <= score["alpha_interval"] <= score["interval"][1]
    [wrong] = form["labels"]
    assert wrong["alpha_nominal"] == pytest.approx(expected(WRONG, "nominal"), abs=1e-4)
    values = np.array([WRONG[n] for n in ("ann", "bob", "cat")], dtype=np.float64)
    response = np.tile(np.arange(6), 3)
    assert wrong["kappa"] == pytest.approx(label_kappa(response, values.ravel()), abs=1e-4)
    assert wrong["rate"] == pytest.approx(values.mean(), abs=1e-4)
    assert form["texts"] == [{"field": "why", "label": "Why", "n_filled": 6}]


def test_a_project_without_a_form_has_no_form_agreement(db):
    project = project_create(name="Plain", slug="plain", overlap=2)
    PromptFactory(project=project)
    for _ in range(2):
        user = labeler(project)
        assignment = assignment_next(project=project, labeler=user)
        ranking_submit(labeler=user, assignment_id=assignment.id, ranks={r: 1 for r in assignment.shown_order})
    assert agreement_report_get(project=project, n_boot=0)["response_form"] is None


def test_api_schema_documents_the_form_figures(rated):
    report = json.loads(json.dumps(agreement_report_get(project=rated, n_boot=10)))
    assert api_client(manager(rated)).get("/api/projects/rated/agreement/?n_boot=10").json() == report
    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    assert set(components["ResponseFormAgreement"]["properties"]) == set(report["response_form"])
    assert set(components["ScoreAgreement"]["properties"]) == set(report["response_form"]["score"])
    assert set(components["LabelAgreement"]["properties"]) == set(report["response_form"]["labels"][0])
    assert set(components["TextFieldCount"]["properties"]) == set(report["response_form"]["texts"][0])


def test_agreement_page_and_command_show_each_field(rated, client):
    client.force_login(manager(rated))
    html = client.get("/projects/rated/agreement/?n_boot=20").content.decode()
    assert 'id="response-form"' in html
    assert "Quality &lt;b&gt;&amp;&lt;/b&gt;" in html and "<b>&</b>" not in html  # manager input is escaped
    alpha = f"{round(expected(SCORES, 'interval'), 3):.3f}"
    assert f'data-figure="alpha_interval">{alpha}' in html
    assert 'data-field="wrong"' in html and 'data-field="why"' in html
    out = io.StringIO()
    call_command("agreement", "--project", "rated", "--n-boot", "0", stdout=out)
    text = out.getvalue()
    assert "Per-response form (18 ratings by 3 labelers" in text
    assert f"quality  score 1-5  {alpha}" in text
