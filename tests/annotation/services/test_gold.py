"""Gold prompts: setting and unsetting a reference ranking, and how gold prompts count in the agreement report."""

import pytest
from django.core.exceptions import ValidationError

from annotation.models import Prompt, Ranking
from annotation.services.agreement import agreement_report_get
from annotation.services.gold import gold_prompts_get, prompt_gold_set, prompt_gold_unset
from annotation.services.projects import project_update
from tests.factories import ProjectFactory, PromptFactory, labeler, rank_queue


def _ids(prompt: Prompt) -> list[int]:
    return list(prompt.responses.order_by("index").values_list("id", flat=True))


def _state(prompt: Prompt) -> tuple:
    prompt.refresh_from_db()
    return prompt.is_gold, prompt.gold_ranks, prompt.ranking_count, prompt.is_complete


def test_prompt_gold_set_marks_gold_and_stores_reference_with_string_keys(db):
    prompt = PromptFactory(responses=4)
    a, b, c, d = _ids(prompt)

    returned = prompt_gold_set(prompt=prompt, ranks={a: 2, b: 1, c: 3, d: 2})

    prompt.refresh_from_db()
    assert returned.pk == prompt.pk and prompt.is_gold is True
    assert prompt.gold_ranks == {str(a): 2, str(b): 1, str(c): 3, str(d): 2}
    assert list(gold_prompts_get(project=prompt.project)) == [prompt]


def test_prompt_gold_set_allows_ties_even_where_the_project_forbids_them_for_labelers(db):
    prompt = PromptFactory(project=ProjectFactory(allow_ties=False), responses=3)
    a, b, c = _ids(prompt)

    prompt_gold_set(prompt=prompt, ranks={a: 1, b: 1, c: 1})

    assert _state(prompt)[:2] == (True, {str(a): 1, str(b): 1, str(c): 1})


def test_prompt_gold_set_refuses_non_dense_ranks_and_changes_nothing(db):
    prompt = PromptFactory(responses=3)
    a, b, c = _ids(prompt)
    before = _state(prompt)

    with pytest.raises(ValidationError, match="Ranks must be dense"):
        prompt_gold_set(prompt=prompt, ranks={a: 1, b: 3, c: 3})

    assert _state(prompt) == before == (False, None, 0, False)


def test_prompt_gold_set_refuses_a_response_of_another_prompt_and_changes_nothing(db):
    prompt = PromptFactory(responses=2)
    a, b = _ids(prompt)
    stray = PromptFactory(project=prompt.project, responses=2).responses.first()

    with pytest.raises(ValidationError) as caught:
        prompt_gold_set(prompt=prompt, ranks={a: 1, b: 2, stray.id: 3})

    assert caught.value.messages == [f"Response {stray.id} is not one of the responses shown for this prompt."]
    assert _state(prompt) == (False, None, 0, False)


def test_prompt_gold_set_needs_every_response_even_beyond_responses_per_task(db):
    prompt = PromptFactory(project=ProjectFactory(responses_per_task=2), responses=3)
    a, b, c = _ids(prompt)

    with pytest.raises(ValidationError, match=f"Response {c} has no rank"):
        prompt_gold_set(prompt=prompt, ranks={a: 1, b: 2})

    assert _state(prompt)[0] is False


def test_prompt_gold_set_again_replaces_the_reference_and_a_failed_replacement_keeps_the_old_one(db):
    prompt = PromptFactory(responses=2)
    a, b = _ids(prompt)
    prompt_gold_set(prompt=prompt, ranks={a: 1, b: 2})

    prompt_gold_set(prompt=prompt, ranks={a: 2, b: 1})
    assert _state(prompt)[:2] == (True, {str(a): 2, str(b): 1})

    with pytest.raises(ValidationError, match="outside 1..2"):
        prompt_gold_set(prompt=prompt, ranks={a: 1, b: 5})
    assert _state(prompt)[:2] == (True, {str(a): 2, str(b): 1})


def test_prompt_gold_unset_recounts_the_rankings_towards_the_overlap(db):
    project = ProjectFactory(overlap=3, gold_rate=0.0)
    prompt = PromptFactory(project=project, responses=3)
    first, second, third = labeler(project), labeler(project), labeler(project)
    rank_queue(project, first)
    rank_queue(project, second)
    assert _state(prompt) == (False, None, 2, False)

    prompt_gold_set(prompt=prompt, ranks={rid: 1 for rid in _ids(prompt)})
    project_update(project=project, gold_rate=1.0)
    rank_queue(project, third)  # served as gold: it does not count towards the overlap
    assert Ranking.objects.filter(prompt=prompt).count() == 3
    assert _state(prompt)[2] == 2

    prompt_gold_unset(prompt=prompt)

    assert _state(prompt) == (False, None, 3, True)
    assert list(gold_prompts_get(project=project)) == []


def _by_index(prompt, responses):
    return {r.id: r.index + 1 for r in responses}


def _reversed_on(gold_prompt: Prompt):
    def ranks_for(prompt, responses):
        if prompt.pk != gold_prompt.pk:
            return _by_index(prompt, responses)
        return {r.id: len(responses) - r.index for r in responses}

    return ranks_for


def test_gold_prompt_leaves_the_headline_figures_but_scores_the_labelers_gold_accuracy(db):
    """Two labelers agree on two prompts and disagree completely on a third; that third, already ranked, turns gold
    with the first labeler's order as reference."""
    project = ProjectFactory(overlap=2)
    prompts = [PromptFactory(project=project, responses=4) for _ in range(3)]
    gold = prompts[2]
    matching, reversing = labeler(project, username="matching"), labeler(project, username="reversing")
    rank_queue(project, matching, _by_index)
    rank_queue(project, reversing, _reversed_on(gold))

    before = agreement_report_get(project=project, n_boot=0)
    prompt_gold_set(prompt=gold, ranks={r.id: r.index + 1 for r in gold.responses.all()})
    after = agreement_report_get(project=project, n_boot=0)

    assert (before["n_prompts"], before["n_rankings"]) == (3, 6)
    assert before["pairwise_agreement_ties_dropped"] == pytest.approx(12 / 18, abs=1e-4)
    assert before["lowest_prompts"][0]["prompt_id"] == gold.pk
    assert (after["n_prompts"], after["n_rankings"], after["n_labelers"]) == (2, 4, 2)
    assert after["pairwise_agreement_ties_dropped"] == 1.0
    assert after["alpha_ordinal"] == 1.0
    assert gold.pk not in [row["prompt_id"] for row in after["lowest_prompts"]]
    rows = {row["username"]: row for row in after["labelers"]}
    assert (rows["matching"]["gold_accuracy"], rows["matching"]["n_gold_pairs"]) == (1.0, 6)
    assert (rows["reversing"]["gold_accuracy"], rows["reversing"]["n_gold_pairs"]) == (0.0, 6)
    assert before["labelers"][0]["gold_accuracy"] is None  # no gold prompt yet
    assert Ranking.objects.filter(prompt=gold).count() == 2  # their rankings are kept


def test_gold_prompt_unset_puts_its_rankings_back_into_the_figures(db):
    project = ProjectFactory(overlap=2)
    prompts = [PromptFactory(project=project, responses=3) for _ in range(2)]
    first, second = labeler(project), labeler(project)
    rank_queue(project, first, _by_index)
    rank_queue(project, second, _reversed_on(prompts[1]))
    prompt_gold_set(prompt=prompts[1], ranks={rid: 1 for rid in _ids(prompts[1])})
    assert agreement_report_get(project=project, n_boot=0)["pairwise_agreement_ties_dropped"] == 1.0

    prompt_gold_unset(prompt=prompts[1])

    report = agreement_report_get(project=project, n_boot=0)
    assert (report["n_prompts"], report["n_rankings"]) == (2, 4)
    assert report["pairwise_agreement_ties_dropped"] == 0.5
    assert all(row["gold_accuracy"] is None for row in report["labelers"])
