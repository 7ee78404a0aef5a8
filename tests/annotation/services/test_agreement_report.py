"""agreement_report_get on projects in the database, checked against values computed by hand and against the
`krippendorff` package on the same reliability matrix."""

from datetime import timedelta
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from django.core.management import call_command
from scipy import stats

from annotation.models import Membership, Project, Prompt, Ranking, RankingEntry
from annotation.services.agreement import agreement_report_get
from annotation.services.gold import prompt_gold_set
from annotation.services.projects import membership_set
from tests.factories import ProjectFactory, PromptFactory, labeler, rank_queue

WMT = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "wmt23_ende_3raters.jsonl"

# The worked example: 3 labelers, 2 prompts x 3 responses, ranks by response index (1 = best, equal = tie).
#   prompt 1 (a, b, c): L1 1 2 3 | L2 1 2 3 | L3 1 1 2      prompt 2 (d, e, f): L1 1 2 3 | L2 2 1 3 | L3 1 2 2
EXAMPLE = {
    "L1": [[1, 2, 3], [1, 2, 3]],
    "L2": [[1, 2, 3], [2, 1, 3]],
    "L3": [[1, 1, 2], [1, 2, 2]],
}
# Pairwise agreement, per response pair: labelers preferring the first (p), the second (q), tying (t).
#   prompt 1: (a,b) p=2 t=1; (a,c) p=3; (b,c) p=3      prompt 2: (d,e) p=2 q=1; (d,f) p=3; (e,f) p=2 t=1
#   ties dropped:       agreeing labeler pairs C(p,2)+C(q,2) of C(p+q,2)
#     prompt 1: (1 + 3 + 3) / (1 + 3 + 3) = 7/7;  prompt 2: (1 + 3 + 1) / (3 + 3 + 1) = 5/7;  pooled 12/14 = 0.8571
#   tie as an outcome:  C(p,2)+C(q,2)+C(t,2) of C(p+q+t,2)
#     prompt 1: (1 + 3 + 3) / (3 + 3 + 3) = 7/9;  prompt 2: (1 + 3 + 1) / 9 = 5/9;            pooled 12/18 = 0.6667
PAIRWISE_DROPPED = 0.8571
PAIRWISE_OUTCOME = 0.6667
# Kendall's W = 12 S / (m^2 (n^3 - n) - m sum T), m = 3 labelers, n = 3 responses, midranks, T = t^3 - t per tie:
#   prompt 1: rank sums a 1+1+1.5 = 3.5, b 5.5, c 9; mean 6; S = 6.25 + 0.25 + 9 = 15.5; sum T = 6 (L3 ties a, b)
#             W = 186 / (9 * 24 - 3 * 6) = 186 / 198 = 0.9394
#   prompt 2: rank sums d 4, e 5.5, f 8.5; S = 4 + 0.25 + 6.25 = 10.5; sum T = 6;  W = 126 / 198 = 0.6364
#   mean W = 312 / 396 = 0.7879
KENDALL_W_MEAN = 0.7879
# L3's agreement: tau-b of their midranks with the mean midrank the other two gave each response.
#   prompt 1: L3 (1.5, 1.5, 3) vs others (1, 2, 3): C - D = 2, untied pairs 2 and 3 -> 2 / sqrt(6) = 0.8165
#   prompt 2: L3 (1, 2.5, 2.5) vs others (1.5, 1.5, 3): C - D = 1, untied pairs 2 and 2 -> 1 / 2 = 0.5
#   mean = 0.6582
L3_AGREEMENT = 0.6582
# Flag "unsafe": L1 and L2 flag prompt 2. Fleiss' kappa on prompts x [not flagged, flagged] = [3, 0], [1, 2]:
#   P_1 = 1, P_2 = (1 + 4 - 3) / 6 = 1/3, P = 2/3; p = (4/6, 2/6), P_e = 20/36; kappa = (24 - 20) / (36 - 20) = 0.25
FLAG_KAPPA = 0.25


def _rank(prompt: Prompt, user, ranks: list[int], *, flags=(), seconds=None, guideline=1) -> Ranking:
    """A current ranking stored directly (shown in index order), keeping the prompt's ranking count as the
    ranking service does."""
    responses = list(prompt.responses.order_by("index"))
    shown = [r.id for r in responses]
    ranking = Ranking.objects.create(
        project=prompt.project, prompt=prompt, labeler=user, guideline_version=guideline, num_responses=len(shown),
        shown_order=shown, flags=list(flags), time_spent_s=seconds,
    )  # fmt: skip
    RankingEntry.objects.bulk_create(
        RankingEntry(ranking=ranking, response=response, rank=rank, shown_position=i, num_responses=len(shown))
        for i, (response, rank) in enumerate(zip(responses, ranks, strict=True))
    )
    prompt.refresh_from_db()
    if not prompt.is_gold:
        prompt.ranking_count += 1
        prompt.is_complete = prompt.ranking_count >= prompt.project.overlap
        prompt.save(update_fields=["ranking_count", "is_complete"])
    return ranking


def _example(project: Project, categories=("", "")) -> tuple[list[Prompt], dict]:
    prompts = [PromptFactory(project=project, responses=3, category=c) for c in categories]
    users = {}
    for name, per_prompt in EXAMPLE.items():
        users[name] = labeler(project, username=name)
        for number, (prompt, ranks) in enumerate(zip(prompts, per_prompt, strict=True)):
            flags = ["unsafe"] if name in ("L1", "L2") and number == 1 else []
            _rank(prompt, users[name], ranks, flags=flags, seconds=10.0 * (number + 1))
    return prompts, users


def _package_alpha(prompts: list[Prompt], level: str, tie_coding: str = "average") -> float:
    """The `krippendorff` package on the labelers x responses matrix of the current rankings of `prompts`, each
    ranking's ranks recoded with scipy's `rankdata` (`tie_coding`: "average" or "dense")."""
    entries = list(
        RankingEntry.objects.filter(ranking__prompt__in=prompts, ranking__is_current=True).values_list(
            "ranking_id", "ranking__labeler_id", "response_id", "rank"
        )
    )
    labelers = sorted({e[1] for e in entries})
    responses = sorted({e[2] for e in entries})
    by_ranking: dict[int, list] = {}
    for entry in entries:
        by_ranking.setdefault(entry[0], []).append(entry)
    matrix = np.full((len(labelers), len(responses)), np.nan)
    for ranking in by_ranking.values():
        recoded = stats.rankdata([rank for *_, rank in ranking], method=tie_coding)
        for (_, user_id, response_id, _), rank in zip(ranking, recoded, strict=True):
            matrix[labelers.index(user_id), responses.index(response_id)] = rank
    return round(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level), 4)


def _headline(report: dict) -> dict:
    keys = ("alpha_ordinal", "alpha_interval", "alpha_nominal", "alpha_ratio", "kendall_w_mean")
    keys += ("pairwise_agreement_ties_dropped", "pairwise_agreement_ties_as_outcome", "n_prompts", "n_labelers")
    return {key: report[key] for key in keys} | {"n_rankings": report["n_rankings"]}


@pytest.fixture
def example(db):
    project = ProjectFactory(overlap=3)
    prompts, users = _example(project)
    return project, prompts, users


def test_report_of_worked_example_matches_hand_computed_figures(example):
    project, prompts, _ = example

    report = agreement_report_get(project=project, n_boot=50)

    assert (report["n_prompts"], report["n_labelers"], report["n_rankings"]) == (2, 3, 6)
    assert report["pairwise_agreement_ties_dropped"] == PAIRWISE_DROPPED
    assert report["pairwise_agreement_ties_as_outcome"] == PAIRWISE_OUTCOME
    assert report["kendall_w_mean"] == KENDALL_W_MEAN
    for level in ("ordinal", "interval", "nominal", "ratio"):
        assert report[f"alpha_{level}"] == _package_alpha(prompts, level), level


def test_report_alpha_follows_the_tie_coding_and_says_which_it_used(example):
    # L3 ties a and b on prompt 1 and e and f on prompt 2: dense (1 1 2) and averaged (1.5 1.5 3) ranks differ
    project, prompts, _ = example

    average = agreement_report_get(project=project, n_boot=0)
    dense = agreement_report_get(project=project, n_boot=0, tie_coding="dense")

    assert (average["tie_coding"], dense["tie_coding"]) == ("average", "dense")
    for level in ("ordinal", "interval", "ratio"):
        assert average[f"alpha_{level}"] == _package_alpha(prompts, level, "average"), level
        assert dense[f"alpha_{level}"] == _package_alpha(prompts, level, "dense"), level
    assert average["alpha_interval"] != dense["alpha_interval"]
    assert average["by_category"][0]["alpha_ordinal"] == average["alpha_ordinal"]  # one category: the breakdown too
    assert dense["by_category"][0]["alpha_ordinal"] == dense["alpha_ordinal"]
    assert average["kendall_w_mean"] == dense["kendall_w_mean"] == KENDALL_W_MEAN  # midranks either way


def test_report_refuses_an_unknown_tie_coding(example):
    with pytest.raises(ValueError, match="tie coding"):
        agreement_report_get(project=example[0], n_boot=0, tie_coding="min")


def test_report_per_prompt_distribution_and_lowest_prompts_follow_the_example(example):
    project, prompts, _ = example

    report = agreement_report_get(project=project, n_boot=0)

    # per-prompt agreement (ties dropped): prompt 1 = 7/7 (last bin, closed), prompt 2 = 5/7 = 0.714 (bin 0.7-0.8)
    assert report["per_prompt_histogram"]["counts"] == [0, 0, 0, 0, 0, 0, 0, 1, 0, 1]
    assert report["per_prompt_histogram"]["edges"][7:9] == [0.7, 0.8]
    assert [(row["prompt_id"], row["pairwise_agreement"], row["n_labelers"]) for row in report["lowest_prompts"]] == [
        (prompts[1].id, 0.7143, 3),
        (prompts[0].id, 1.0, 3),
    ]
    assert report["lowest_prompts"][0]["text"] == prompts[1].text


def test_report_labeler_table_flags_and_times_follow_the_example(example):
    project, _, users = example

    report = agreement_report_get(project=project, n_boot=0)

    rows = {row["username"]: row for row in report["labelers"]}
    assert set(rows) == {"L1", "L2", "L3"}
    assert rows["L3"]["agreement"] == L3_AGREEMENT
    assert rows["L3"]["user_id"] == users["L3"].id
    assert all(row["n_rankings"] == 2 and row["median_seconds"] == 15.0 for row in rows.values())
    assert (rows["L1"]["flag_rate"], rows["L3"]["flag_rate"]) == (0.5, 0.0)
    assert not any(row["excluded"] or row["outlier"] for row in rows.values())
    assert all(row["gold_accuracy"] is None and row["n_gold_pairs"] == 0 for row in rows.values())
    unsafe = next(flag for flag in report["flags"] if flag["flag"] == "unsafe")
    assert (unsafe["rate"], unsafe["kappa"]) == (round(2 / 6, 4), FLAG_KAPPA)
    never = next(flag for flag in report["flags"] if flag["flag"] == "cant_judge")
    assert (never["rate"], never["kappa"]) == (0.0, None)


def test_report_intervals_contain_the_figures_and_repeat_for_a_seed(example):
    project, _, _ = example

    first = agreement_report_get(project=project, n_boot=100, seed=7)
    again = agreement_report_get(project=project, n_boot=100, seed=7)

    assert first == again and first["n_boot"] == 100
    for name, (low, high) in first["intervals"].items():
        assert low <= first[name] <= high, name
    # two prompts: a resample is prompt 1 twice, prompt 2 twice, or both
    assert first["intervals"]["pairwise_agreement_ties_dropped"] == [round(5 / 7, 4), 1.0]
    assert "intervals" not in agreement_report_get(project=project, n_boot=0)


def test_report_of_empty_project_has_only_zero_counts(db):
    project = ProjectFactory()
    PromptFactory(project=project)
    labeler(project)

    assert agreement_report_get(project=project) == {
        "project": project.slug,
        "n_rankings": 0,
        "n_prompts": 0,
        "n_labelers": 0,
    }


def test_report_with_a_single_labeler_has_null_figures_and_does_not_crash(db):
    project = ProjectFactory(overlap=1)
    prompts = [PromptFactory(project=project, responses=3) for _ in range(2)]
    alone = labeler(project, username="alone")
    for prompt in prompts:
        _rank(prompt, alone, [1, 2, 2])

    report = agreement_report_get(project=project, n_boot=20)

    assert (report["n_prompts"], report["n_labelers"], report["n_rankings"]) == (2, 1, 2)
    for name in ("alpha_ordinal", "alpha_interval", "alpha_nominal", "alpha_ratio", "kendall_w_mean"):
        assert report[name] is None, name
    assert report["pairwise_agreement_ties_dropped"] is report["pairwise_agreement_ties_as_outcome"] is None
    assert all(interval == [None, None] for interval in report["intervals"].values())
    assert report["per_prompt_histogram"]["counts"] == [0] * 10 and report["lowest_prompts"] == []
    [row] = report["labelers"]
    assert (row["username"], row["n_rankings"], row["agreement"], row["outlier"]) == ("alone", 2, None, False)
    assert [row["group"] for row in report["by_category"]] == ["(none)"]
    assert report["by_category"][0]["pairwise_agreement_ties_dropped"] is None


def test_report_leaves_gold_prompts_out_of_headline_but_scores_labelers_on_them(example):
    project, _, users = example
    gold = PromptFactory(project=project, responses=3)
    a, b, c = gold.responses.order_by("index").values_list("id", flat=True)
    prompt_gold_set(prompt=gold, ranks={a: 1, b: 2, c: 3})
    gold.refresh_from_db()
    # every labeler contradicts every other one on the gold prompt: counted, it would pull agreement down
    _rank(gold, users["L1"], [1, 2, 3])
    _rank(gold, users["L2"], [3, 2, 1])
    _rank(gold, users["L3"], [1, 1, 2])

    report = agreement_report_get(project=project, n_boot=0)

    assert (report["n_prompts"], report["n_rankings"]) == (2, 6)
    assert report["pairwise_agreement_ties_dropped"] == PAIRWISE_DROPPED
    assert report["kendall_w_mean"] == KENDALL_W_MEAN
    assert gold.id not in [row["prompt_id"] for row in report["lowest_prompts"]]
    rows = {row["username"]: row for row in report["labelers"]}
    # reference a > b > c: L1 3 of 3 pairs, L2 0 of 3, L3 ties (a, b) = 1/2 and gets (a, c), (b, c): 2.5 / 3
    assert {name: (row["gold_accuracy"], row["n_gold_pairs"]) for name, row in rows.items()} == {
        "L1": (1.0, 3),
        "L2": (0.0, 3),
        "L3": (0.8333, 3),
    }


def test_report_leaves_excluded_labeler_out_of_figures_but_lists_them_marked(example):
    project, prompts, _ = example
    without = agreement_report_get(project=project, n_boot=30)
    contrarian = labeler(project, username="contrarian")
    for prompt in prompts:
        _rank(prompt, contrarian, [3, 2, 1])
    counted = agreement_report_get(project=project, n_boot=0)
    membership_set(project=project, user=contrarian, role=Membership.Role.LABELER, excluded=True)

    report = agreement_report_get(project=project, n_boot=30)

    assert counted["n_labelers"] == 4 and counted["pairwise_agreement_ties_dropped"] < PAIRWISE_DROPPED
    assert _headline(report) == _headline(without) and report["intervals"] == without["intervals"]
    assert (report["n_labelers"], report["n_rankings"]) == (3, 6)
    assert report["pairwise_agreement_ties_dropped"] == PAIRWISE_DROPPED
    assert report["pairwise_agreement_ties_as_outcome"] == PAIRWISE_OUTCOME
    assert report["kendall_w_mean"] == KENDALL_W_MEAN
    rows = {row["username"]: row for row in report["labelers"]}
    assert rows["contrarian"]["excluded"] is True and rows["contrarian"]["n_rankings"] == 2
    assert [name for name, row in rows.items() if row["excluded"]] == ["contrarian"]
    assert [(row["group"], row["n_rankings"]) for row in report["by_category"]] == [("(none)", 6)]


def test_report_breaks_down_by_category_guideline_version_and_week(db):
    project = ProjectFactory(overlap=3)
    qa, chat = (PromptFactory(project=project, responses=3, category=c) for c in ("qa", "chat"))
    for name, per_prompt in EXAMPLE.items():
        user = labeler(project, username=name)
        _rank(qa, user, per_prompt[0], guideline=1)
        _rank(chat, user, per_prompt[1], guideline=2)
    Ranking.objects.filter(prompt=chat).update(created_at=Ranking.objects.first().created_at - timedelta(days=14))

    report = agreement_report_get(project=project, n_boot=0)

    def groups(key):
        return {
            row["group"]: (row["n_prompts"], row["n_rankings"], row["pairwise_agreement_ties_dropped"])
            for row in report[key]
        }

    assert groups("by_category") == {"qa": (1, 3, 1.0), "chat": (1, 3, 0.7143)}
    assert groups("by_guideline_version") == {"1": (1, 3, 1.0), "2": (1, 3, 0.7143)}
    weeks = sorted(report["over_time"], key=lambda row: row["group"])
    assert [(row["n_prompts"], row["pairwise_agreement_ties_dropped"]) for row in weeks] == [(1, 0.7143), (1, 1.0)]
    assert all(len(row["group"]) == 8 and row["group"][4:6] == "-W" for row in weeks)
    chat_row = next(row for row in report["by_category"] if row["group"] == "chat")
    assert chat_row["alpha_ordinal"] == _package_alpha([chat], "ordinal")


def test_report_leaderboard_puts_the_model_always_ranked_first_on_top(db):
    project = ProjectFactory(overlap=3)
    for _ in range(4):
        PromptFactory(project=project, responses=3)  # models model-0, model-1, model-2 by index
    preferred = {"model-2": 1, "model-0": 2, "model-1": 3}
    for _ in range(3):  # through the labeling services: assignment_next + ranking_submit, random shown order
        rank_queue(project, labeler(project), lambda prompt, rs: {r.id: preferred[r.model_name] for r in rs})

    report = agreement_report_get(project=project, n_boot=50)

    board = report["leaderboard"]
    assert [row["model"] for row in board] == ["model-2", "model-0", "model-1"]
    assert [row["win_rate"] for row in board] == [1.0, 0.5, 0.0]
    assert all(row["n_comparisons"] == 4 * 3 * 2 for row in board)  # 4 prompts x 3 labelers x 2 opponents
    assert board[0]["rating"] > board[1]["rating"] > board[2]["rating"]
    assert all(row["low"] <= row["rating"] <= row["high"] for row in board)
    assert report["pairwise_agreement_ties_dropped"] == 1.0 and report["kendall_w_mean"] == 1.0
    assert report["n_rankings"] == 12 and set(Prompt.objects.values_list("ranking_count", flat=True)) == {3}


@pytest.mark.django_db
def test_wmt23_import_alpha_under_both_tie_codings_equals_krippendorff_package():
    if not WMT.exists():
        pytest.fail(f"Real data file missing: {WMT} (see ../shared/data/README.md)")
    call_command("import_rankings", str(WMT), "--project", "wmt")
    project = Project.objects.get(slug="wmt")
    prompts = list(project.prompts.all())

    report = agreement_report_get(project=project, n_boot=20)

    assert (report["n_prompts"], report["n_labelers"], report["n_rankings"]) == (104, 10, 312)
    assert report["alpha_interval"] == _package_alpha(prompts, "interval")
    assert report["alpha_ordinal"] == _package_alpha(prompts, "ordinal")
    assert len(report["labelers"]) == 10 and len(report["leaderboard"]) == 10
    assert 0.5 < report["pairwise_agreement_ties_dropped"] < 1
    dense = agreement_report_get(project=project, n_boot=0, tie_coding="dense")
    assert dense["alpha_interval"] == _package_alpha(prompts, "interval", "dense")
    assert dense["alpha_ordinal"] == _package_alpha(prompts, "ordinal", "dense")
    assert (report["tie_coding"], dense["tie_coding"]) == ("average", "dense")


def test_report_breakdown_compares_only_rankings_of_the_same_guideline_version_within_a_prompt(example):
    project, prompts, users = example
    Ranking.objects.filter(labeler=users["L3"]).update(guideline_version=2)  # L3 ranked under v2, L1 and L2 under v1

    report = agreement_report_get(project=project, n_boot=0)

    # v1: L1 and L2 only. prompt 1: both 1 2 3, 3 of 3 pairs agree; prompt 2: 1 2 3 vs 2 1 3, 2 of 3 -> 5/6 = 0.8333
    # v2: L3 alone, nobody to agree with
    rows = {row["group"]: row for row in report["by_guideline_version"]}
    assert {group: (row["n_prompts"], row["n_rankings"]) for group, row in rows.items()} == {"1": (2, 4), "2": (2, 2)}
    assert rows["1"]["pairwise_agreement_ties_dropped"] == 0.8333
    assert rows["2"]["pairwise_agreement_ties_dropped"] is None and rows["2"]["alpha_ordinal"] is None
    columns = [r.id for prompt in prompts for r in prompt.responses.order_by("index")]
    matrix = np.full((2, len(columns)), np.nan)  # L1 and L2 x the 6 responses
    for row, name in enumerate(("L1", "L2")):
        for response_id, rank in RankingEntry.objects.filter(ranking__labeler=users[name]).values_list(
            "response_id", "rank"
        ):
            matrix[row, columns.index(response_id)] = rank
    assert rows["1"]["alpha_ordinal"] == round(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal"), 4
    )
    assert report["pairwise_agreement_ties_dropped"] == PAIRWISE_DROPPED  # the headline still compares everyone


def test_report_warns_of_a_disconnected_comparison_graph_and_gives_per_component_leaderboards(example):
    # The example's 2 prompts have responses by model-0, -1, -2; renaming prompt 2's models splits the graph.
    project, prompts, _ = example
    for response in prompts[1].responses.all():
        response.model_name = f"other-{response.index}"
        response.save(update_fields=["model_name"])

    report = agreement_report_get(project=project, n_boot=0)

    assert len(report["leaderboard_warnings"]) == 1 and "2 disconnected groups" in report["leaderboard_warnings"][0]
    groups = [{row["model"] for row in rows} for rows in report["leaderboard_components"]]
    assert sorted(groups, key=sorted) == [{"model-0", "model-1", "model-2"}, {"other-0", "other-1", "other-2"}]
    assert {row["component"] for row in report["leaderboard"]} == {0, 1}


def test_report_of_a_connected_comparison_graph_has_no_leaderboard_warning(example):
    report = agreement_report_get(project=example[0], n_boot=0)

    assert report["leaderboard_warnings"] == [] and report["leaderboard_components"] == []
    assert {row["component"] for row in report["leaderboard"]} == {0}
