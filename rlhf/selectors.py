"""Reads on training runs: who may see which run, the metric points of the live charts, the length-aware reading of
a reward model's held-out figures (and why a run has none), the human agreement ceiling of an export's held-out
prompts, and where a reward model and the labelers disagree."""

from collections import defaultdict
from itertools import combinations

import numpy as np
from django.contrib.auth.models import AbstractUser
from django.db.models import QuerySet
from django.http import Http404

from annotation import agreement as ag
from annotation.models import Membership, Project, Prompt, RankingEntry
from annotation.selectors import is_admin
from annotation.services.agreement import rankings_load
from rlhf.models import ResponseScore, RunMetric, TrainingRun
from rlhf.training.boundary import index_info
from rlhf.training.evaluate import CHOSEN_SHORTER_WARNING_BELOW, LENGTH_BALANCED_WARNING_BELOW, length_bias_reasons
from rlhf.training.registry import REWARD_MODEL, stage_get

NO_SUCH_RUN = "No such training run."
METRIC_POINTS_MAX = 5000


def managed_projects(*, user: AbstractUser) -> QuerySet[Project]:
    """Projects whose runs the user may see and start: all for admins, the ones they manage otherwise."""
    if is_admin(user):
        return Project.objects.all()
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(memberships__user=user, memberships__role=Membership.Role.MANAGER).distinct()


def runs_for_user(*, user: AbstractUser, project: Project | None = None) -> QuerySet[TrainingRun]:
    runs = TrainingRun.objects.select_related("project", "created_by")
    if not is_admin(user):
        runs = runs.filter(project__in=managed_projects(user=user))
    if project is not None:
        runs = runs.filter(project=project)
    return runs.order_by("-created_at", "-id")


def run_get_for_user(*, user: AbstractUser, run_id: int) -> TrainingRun:
    """The run if the user manages its project (or is an admin); 404 otherwise, labelers included."""
    run = runs_for_user(user=user).filter(pk=run_id).first()
    if run is None:
        raise Http404(NO_SUCH_RUN)
    return run


def metric_points(*, run: TrainingRun, after: int = 0) -> list[dict]:
    """Metric points logged after point id `after` (the charts poll with the last id they have)."""
    points = RunMetric.objects.filter(run=run, id__gt=after).order_by("id")[:METRIC_POINTS_MAX]
    return [
        {"id": i, "step": s, "name": n, "value": v} for i, s, n, v in points.values_list("id", "step", "name", "value")
    ]


def metric_series(*, run: TrainingRun) -> dict[str, list[list[float]]]:
    """Every metric of a run as {name: [[step, value], ...]}."""
    series: dict[str, list[list[float]]] = defaultdict(list)
    for step, name, value in RunMetric.objects.filter(run=run).order_by("id").values_list("step", "name", "value"):
        series[name].append([step, value])
    return dict(series)


# --- held-out evaluation: length, and why there is none ----------------------------------------------------------

# length_evaluation field -> metrics.json key (rlhf.training.evaluate.length_metrics; docs/training.md)
LENGTH_METRICS = {
    "accuracy": "eval/accuracy",
    "accuracy_chosen_longer": "eval/accuracy_chosen_longer",
    "pairs_chosen_longer": "eval/pairs_chosen_longer",
    "accuracy_chosen_shorter": "eval/accuracy_chosen_shorter",
    "pairs_chosen_shorter": "eval/pairs_chosen_shorter",
    "pairs_equal_length": "eval/pairs_equal_length",
    "length_balanced_accuracy": "eval/length_balanced_accuracy",
    "length_baseline_accuracy": "eval/length_baseline_accuracy",
    "margin_length_correlation": "eval/margin_length_correlation",
}
NO_HELDOUT_RATIO_ZERO = (
    "No held-out evaluation: this run's export used a test ratio of 0, so every prompt went to training and no pair "
    "was kept aside to measure the model on. Start a run with a test ratio above 0 to get a held-out accuracy."
)
NO_HELDOUT_NO_PROMPT = (
    "No held-out evaluation: the train/test split (test ratio {ratio}) held out none of the {prompts} ranked "
    "prompts, so there is no pair the model has not seen to measure it on. Rank more prompts or raise the test ratio."
)
NO_HELDOUT_NO_PAIRS = (
    "No held-out evaluation: the {prompts} held-out prompt(s) gave no preference pair (every ranking of them is a "
    "tie, flagged or filtered out), so there is nothing to measure the model on."
)


def run_length_evaluation_get(*, run: TrainingRun) -> dict | None:
    """The held-out figures split by response length and whether the length-bias warning applies (`warning`, as
    stored by the run; computed from the figures for older runs), with the thresholds. None when the run has no
    length figures (no held-out set, not evaluated yet, or evaluated before they existed)."""
    metrics = run.metrics or {}
    if "eval/accuracy_chosen_longer" not in metrics:
        return None
    figures = {name: metrics.get(key) for name, key in LENGTH_METRICS.items()}
    reasons = length_bias_reasons(figures["length_balanced_accuracy"], figures["accuracy_chosen_shorter"])
    stored = metrics.get("eval/length_bias_warning")
    return figures | {
        "warning": bool(reasons) if stored is None else bool(stored),
        "warning_reasons": reasons,
        "balanced_threshold": LENGTH_BALANCED_WARNING_BELOW,
        "shorter_threshold": CHOSEN_SHORTER_WARNING_BELOW,
    }


def run_no_heldout_reason_get(*, run: TrainingRun) -> str | None:
    """Why a reward-model run has no held-out figure, in plain words, known as soon as its export is written; None
    when it has held-out pairs (or no export of a project to explain it by)."""
    export = run.export or {}
    if run.kind != TrainingRun.Kind.REWARD_MODEL or not export or export.get("pending") or export.get("test_pairs"):
        return None  # (a pending export is written by the worker when it takes the run)
    if (run.metrics or {}).get("eval/pairs"):
        return None
    ratio = (export.get("options") or {}).get("test_ratio")
    splits = (export.get("counts") or {}).get("splits") or {}
    test_prompts = (splits.get("test") or {}).get("prompts", 0)
    if ratio == 0:
        return NO_HELDOUT_RATIO_ZERO
    if not test_prompts:
        prompts = sum((side or {}).get("prompts", 0) for side in splits.values())
        return NO_HELDOUT_NO_PROMPT.format(ratio="the default" if ratio is None else ratio, prompts=prompts)
    return NO_HELDOUT_NO_PAIRS.format(prompts=test_prompts)


# --- the reward model's boundary ----------------------------------------------------------------------------------

BOUNDARY_SOURCES = [  # (run field, key, title): where the boundary reports of a run are kept
    ("export", "boundary", "Before the run: its training prompts against the reward model"),
    ("metrics", "boundary", "The run's prompts against the reward model"),
    ("scoring", "boundary", "Scored prompts"),
    ("generation", "boundary", "Prompts of the generated round"),
]


def run_boundary_get(*, run: TrainingRun) -> dict:
    """What the run page shows of the reward model's boundary: the index of a reward model (its threshold and how
    it was calibrated), and each boundary report kept on the run (before the run, PPO's, scoring's, generation's),
    with the share and list of out-of-range prompts and, per category, the share out of range next to the reward
    model's held-out accuracy."""
    index, stage = None, stage_get(run.kind)
    if REWARD_MODEL in stage.outputs and run.output_dir and run.status == run.Status.SUCCEEDED:
        index = index_info(stage.output_dir(run.output_dir, REWARD_MODEL))
    reports = []
    for field, key, title in BOUNDARY_SOURCES:
        report = (getattr(run, field) or {}).get(key)
        if isinstance(report, dict):
            accuracy = report.get("accuracy_by_category") or {}
            shares = report.get("by_category") or {}
            rows = [{"category": name, "prompts": (shares.get(name) or {}).get("prompts"),
                     "share_out_of_range": (shares.get(name) or {}).get("share_out_of_range"),
                     "accuracy": (accuracy.get(name) or {}).get("accuracy"),
                     "pairs": (accuracy.get(name) or {}).get("pairs")}
                    for name in sorted(set(shares) | set(accuracy))]  # fmt: skip
            reports.append({"title": title, "source": field, "report": report, "categories": rows})
    return {"index": index, "reports": reports} if index or reports else {}


# --- human agreement ceiling ---------------------------------------------------------------------------------------


def _agreement(table: ag.RankTable) -> tuple[float | None, int]:
    agree, compared = ag.pairwise_counts(table, "drop")
    total = float(np.sum(compared))
    return (round(float(np.sum(agree)) / total, 4) if total else None), int(total)


def human_agreement_get(*, project: Project, prompt_ids: list[int]) -> dict:
    """Pairwise agreement between labelers (ties dropped) on these prompts, overall, per category and per guideline
    version: the ceiling a reward model's accuracy on them is judged against. None where no two labelers overlap.
    Gold prompts and excluded labelers are left out, as in the agreement report."""
    empty = {"overall": None, "compared_pairs": 0, "prompts": len(prompt_ids), "by_category": {}, "by_guideline": {}}
    loaded = rankings_load(project=project) if prompt_ids else None
    if loaded is None:
        return empty
    table = loaded.table
    row_prompt = table.prompt_ids[table.prompt] if table.prompt_ids is not None else table.prompt
    rows = np.isin(row_prompt, np.asarray(prompt_ids)) & ~loaded.gold & ~loaded.excluded
    if not rows.any():
        return empty
    overall, compared = _agreement(table.take(rows))
    result = {**empty, "overall": overall, "compared_pairs": compared}
    for key, groups in (("by_category", loaded.category), ("by_guideline", loaded.guideline)):
        for group in np.unique(groups[rows]):
            value, n = _agreement(table.take(rows & (groups == group)))
            label = "(none)" if key == "by_guideline" and int(group) < 0 else str(group)
            result[key][label] = {"agreement": value, "compared_pairs": n}
    return result


# --- model vs labelers ---------------------------------------------------------------------------------------------


def _majorities(ranks_by_ranking: list[dict[int, int]]) -> dict[tuple[int, int], int]:
    """Per response pair (a < b): +1 when most labelers prefer a, -1 when most prefer b (ties and even splits out)."""
    votes: dict[tuple[int, int], int] = defaultdict(int)
    for ranks in ranks_by_ranking:
        for a, b in combinations(sorted(ranks), 2):
            votes[(a, b)] += int(np.sign(ranks[b] - ranks[a]))
    return {pair: int(np.sign(v)) for pair, v in votes.items() if v}


def prompt_disagreements(ranks_by_ranking: list[dict[int, int]], scores: dict[int, float]) -> tuple[int, int]:
    """(pairs where the model's order contradicts the labelers' majority, pairs with a majority and two scores)."""
    disagree = compared = 0
    for (a, b), majority in _majorities(ranks_by_ranking).items():
        if a in scores and b in scores and scores[a] != scores[b]:
            compared += 1
            disagree += int((1 if scores[a] > scores[b] else -1) != majority)
    return disagree, compared


def disagreements_get(*, run: TrainingRun, project: Project, limit: int = 50) -> dict:
    """The prompts where the run's scores and the labelers' majority order disagree most, worst first."""
    scores = dict(
        ResponseScore.objects.filter(run=run, response__prompt__project=project).values_list("response_id", "score")
    )
    excluded = Membership.objects.filter(project=project, excluded=True).values_list("user_id", flat=True)
    entries = (
        RankingEntry.objects.filter(
            ranking__project=project, ranking__is_current=True, ranking__staged=False, ranking__prompt__is_gold=False
        )
        .exclude(ranking__labeler_id__in=excluded)
        .order_by()
        .values_list("ranking__prompt_id", "ranking_id", "response_id", "rank")
    )
    rankings: dict[int, dict[int, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
    for prompt_id, ranking_id, response_id, rank in entries.iterator(chunk_size=5000):
        rankings[prompt_id][ranking_id][response_id] = rank
    rows, total_disagree, total_compared = [], 0, 0
    for prompt_id, by_ranking in rankings.items():
        disagree, compared = prompt_disagreements(list(by_ranking.values()), scores)
        total_disagree, total_compared = total_disagree + disagree, total_compared + compared
        if compared:
            rows.append({"prompt_id": prompt_id, "disagree": disagree, "compared": compared,
                         "rate": disagree / compared, "rankings": len(by_ranking)})  # fmt: skip
    rows.sort(key=lambda r: (-r["rate"], -r["disagree"], r["prompt_id"]))
    prompts_compared, rows = len(rows), rows[:limit]
    _attach_prompts(rows, rankings, scores)
    return {
        "scored_responses": len(scores),
        "prompts_compared": prompts_compared,
        "pairs_compared": total_compared,
        "disagreement_rate": (total_disagree / total_compared) if total_compared else None,
        "prompts": rows,
    }


def _attach_prompts(rows: list[dict], rankings: dict, scores: dict[int, float]) -> None:
    """Each row's prompt, with its responses ordered by the model's score and their mean human rank."""
    prompts = Prompt.objects.in_bulk([r["prompt_id"] for r in rows])
    for row in rows:
        prompt = prompts[row["prompt_id"]]
        by_ranking = rankings[row["prompt_id"]].values()
        responses = []
        for response in prompt.responses.all():
            ranks = [ranks[response.id] for ranks in by_ranking if response.id in ranks]
            responses.append({"id": response.id, "text": response.text, "score": scores.get(response.id),
                              "mean_rank": (sum(ranks) / len(ranks)) if ranks else None})  # fmt: skip
        responses.sort(key=lambda r: -(r["score"] if r["score"] is not None else -np.inf))
        row.update(text=prompt.text, category=prompt.category, responses=responses)
