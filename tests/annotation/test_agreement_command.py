"""`manage.py agreement` on real data: the WMT23 en-de file (104 segments x 10 systems, 3 of 10 raters each)."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.management.commands.agreement import Command
from annotation.models import Membership, Project
from annotation.services.projects import membership_set
from tests.factories import ProjectFactory

WMT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "wmt23_ende_3raters.jsonl"


@pytest.fixture
def wmt(db) -> Project:
    if not WMT.is_file():
        pytest.fail(f"The WMT23 data file is missing: {WMT} (see ../shared/data/README.md)")
    call_command("import_rankings", str(WMT), "--project", "wmt", stdout=StringIO())
    return Project.objects.get(slug="wmt")


def run(*args: str) -> str:
    out = StringIO()
    call_command("agreement", *args, stdout=out)
    return out.getvalue()


def test_agreement_json_is_one_object_with_the_headline_figures_intervals_and_labelers(wmt):
    report = json.loads(run("--project", "wmt", "--json", "--n-boot", "50"))  # fails on anything else in stdout

    assert (report["n_prompts"], report["n_rankings"], report["n_labelers"]) == (104, 312, 10)
    assert 0.3 < report["alpha_interval"] < 0.7
    for key in (
        "alpha_ordinal", "alpha_interval", "kendall_w_mean",
        "pairwise_agreement_ties_dropped", "pairwise_agreement_ties_as_outcome",
    ):  # fmt: skip
        low, high = report["intervals"][key]
        assert 0 < low <= report[key] <= high < 1, key
    # Three raters per segment, many ties: the tie-as-outcome convention is the stricter one.
    assert report["pairwise_agreement_ties_as_outcome"] < report["pairwise_agreement_ties_dropped"]
    assert len(report["labelers"]) == 10 and sum(row["n_rankings"] for row in report["labelers"]) == 312
    assert {row["username"] for row in report["labelers"]} == {f"en-de_rater{i}" for i in range(1, 11)}
    assert len(report["leaderboard"]) == 10 and report["n_boot"] == 50


def test_agreement_json_is_reproducible_with_a_seed_and_follows_it(wmt):
    first = json.loads(run("--project", "wmt", "--json", "--n-boot", "30", "--seed", "1"))
    again = json.loads(run("--project", "wmt", "--json", "--n-boot", "30", "--seed", "1"))
    other = json.loads(run("--project", "wmt", "--json", "--n-boot", "30", "--seed", "2"))

    assert first == again
    assert first["intervals"] != other["intervals"]
    assert first["alpha_ordinal"] == other["alpha_ordinal"]


def test_agreement_readable_report_shows_figures_labelers_leaderboard_and_lowest_prompts(wmt):
    report = json.loads(run("--project", "wmt", "--json", "--n-boot", "40"))
    text = run("--project", "wmt", "--n-boot", "40")
    lines = text.splitlines()

    assert lines[0].startswith("Agreement of project wmt: 312 rankings of 104 prompts by 10 labelers")
    alpha_line = next(line for line in lines if "Krippendorff's alpha (interval)" in line)
    low, high = report["intervals"]["alpha_interval"]
    assert alpha_line.split()[-3:] == [f"{report['alpha_interval']:.3f}", f"[{low:.3f},", f"{high:.3f}]"]
    for row in report["labelers"]:
        line = next(line for line in lines if line.split() and line.split()[0] == row["username"])
        assert line.split()[1] == str(row["n_rankings"])
        assert ("OUTLIER" in line) == row["outlier"] and "EXCLUDED" not in line
    best = report["leaderboard"][0]
    assert any(line.split()[:3] == ["1", best["model"], f"{best['rating']:.3f}"] for line in lines)
    lowest = report["lowest_prompts"][0]
    assert any(line.split()[:2] == [str(lowest["prompt_id"]), f"{lowest['pairwise_agreement']:.3f}"] for line in lines)
    for title in ("By prompt category", "By guideline version", "Over time (ISO week)", "Flags", "Per-prompt"):
        assert any(line.startswith(title) for line in lines), title


def test_agreement_report_marks_an_excluded_labeler_and_leaves_them_out_of_the_figures(wmt):
    before = json.loads(run("--project", "wmt", "--json", "--n-boot", "0"))
    rater = Membership.objects.get(project=wmt, user__username="en-de_rater2")
    membership_set(project=wmt, user=rater.user, role=rater.role, excluded=True)

    after = json.loads(run("--project", "wmt", "--json", "--n-boot", "0"))
    text = run("--project", "wmt", "--n-boot", "0")

    rows = {row["username"]: row for row in after["labelers"]}
    assert (after["n_labelers"], after["n_rankings"]) == (9, 312 - rows["en-de_rater2"]["n_rankings"])
    assert after["alpha_ordinal"] != before["alpha_ordinal"]
    assert rows["en-de_rater2"]["excluded"] is True and len(rows) == 10
    line = next(line for line in text.splitlines() if line.strip().startswith("en-de_rater2 "))
    assert "EXCLUDED" in line
    assert "intervals" not in after and "no intervals (--n-boot 0)" in text


def test_agreement_on_a_project_without_rankings_says_so(db):
    ProjectFactory(slug="fresh")

    assert json.loads(run("--project", "fresh", "--json")) == {
        "project": "fresh", "n_rankings": 0, "n_prompts": 0, "n_labelers": 0,
    }  # fmt: skip
    assert run("--project", "fresh").splitlines()[-1] == "No rankings to measure yet."


def test_agreement_refuses_an_unknown_project_and_a_negative_bootstrap(db):
    with pytest.raises(CommandError, match="No project with slug 'nope'"):
        run("--project", "nope")
    with pytest.raises(CommandError, match="--n-boot: .*must be between 0 and 10000"):
        run("--project", "nope", "--n-boot", "-1")


def test_agreement_help_shows_examples_and_the_outlier_test():
    help_text = Command().create_parser("manage.py", "agreement").format_help()

    assert "python manage.py agreement --project wmt23-ende --json" in help_text
    assert "Mann-Whitney U" in help_text and "--n-boot N" in help_text
    # RawDescriptionHelpFormatter keeps the examples one per line.
    assert "\n  python manage.py agreement --project wmt23-ende\n" in help_text


def test_agreement_tie_coding_flag_reaches_the_report_and_the_readable_output_names_it(wmt):
    default = json.loads(run("--project", "wmt", "--json", "--n-boot", "0"))
    dense = json.loads(run("--project", "wmt", "--json", "--n-boot", "0", "--tie-coding", "dense"))

    assert (default["tie_coding"], dense["tie_coding"]) == ("average", "dense")
    assert default["alpha_interval"] != dense["alpha_interval"]  # WMT23 has many ties
    assert default["pairwise_agreement_ties_dropped"] == dense["pairwise_agreement_ties_dropped"]
    assert "Ties coded as dense ranks" in run("--project", "wmt", "--n-boot", "0", "--tie-coding", "dense")
    assert "Ties coded as average ranks" in run("--project", "wmt", "--n-boot", "0")
    with pytest.raises(CommandError, match="tie-coding"):
        run("--project", "wmt", "--tie-coding", "min")


def test_agreement_prints_the_leaderboard_warning_and_the_per_group_leaderboards(db):
    from annotation.models import Response
    from tests.annotation.services.test_agreement_report import _example

    project = ProjectFactory(slug="split", overlap=3)
    prompts, _ = _example(project)
    Response.objects.filter(prompt=prompts[1]).update(model_name="island")  # one model on prompt 2: no pairs
    Response.objects.filter(prompt=prompts[1], index=0).update(model_name="island-a")

    text = run("--project", "split", "--n-boot", "0")

    assert "WARNING: The models fall into 2 disconnected groups" in text
    assert "Model leaderboard of group 1" in text and "Model leaderboard of group 2" in text
