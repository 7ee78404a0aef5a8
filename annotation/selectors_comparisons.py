"""Blind comparison batches of a new policy against its reference (made by rlhf/services/comparison.py): the human
win rate from the batch's current rankings, next to the reward model's predicted win rate from its stored scores.

A batch is the prompts of one round whose `metadata.comparison` names the run; each response's `metadata.side` says
whose it is (`policy` / `reference`) and `metadata.rm_score` what the run's reward model gave it. Rankings of labelers
a manager excluded do not count (as in the agreement figures); rankings by the demo's simulated labelers count but
are reported as such. The maths is `annotation.agreement.winrate` (bootstrap over prompts)."""

from collections import defaultdict
from typing import Any

from annotation.agreement.winrate import Judgment, win_rate
from annotation.models import Membership, Project, Prompt, RankingEntry, Response

SIMULATED_MARK = "simulated"  # Ranking.metadata["source"] of the demo's simulated labelers contains it
FEW_PROMPTS = 10  # below this many ranked prompts a percentile bootstrap interval is too narrow to trust


def policy_comparisons_get(
    *, project: Project, run_id: int | None = None, n_boot: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """One row per comparison batch of the project (newest round first; only `run_id`'s when given): run id, round,
    policy and reference names, the human win rate with its interval (`human`), the reward model's prediction
    (`rm`, None without scores), rankings, how many of them came from simulated labelers, and `few_prompts` (fewer
    than FEW_PROMPTS prompts ranked: a rough interval)."""
    prompts = Prompt.objects.filter(project=project, metadata__has_key="comparison", is_gold=False)
    if run_id is not None:
        prompts = prompts.filter(metadata__comparison__run_id=run_id)
    batches: dict[tuple[int, int], dict[str, Any]] = {}
    for pid, round_, metadata in prompts.values_list("id", "round", "metadata"):
        info = metadata.get("comparison") or {}
        batch = batches.setdefault((info.get("run_id"), round_), {"info": info, "prompts": []})
        batch["prompts"].append(pid)
    return [_batch_report(project, run, round_, batch, n_boot, seed)
            for (run, round_), batch in sorted(batches.items(), key=lambda item: -item[0][1])]  # fmt: skip


def _batch_report(project: Project, run: int, round_: int, batch: dict, n_boot: int, seed: int) -> dict[str, Any]:
    ids = batch["prompts"]
    sides, rm = {}, defaultdict(lambda: {"policy": [], "reference": []})
    for rid, pid, metadata in Response.objects.filter(prompt_id__in=ids).values_list("id", "prompt_id", "metadata"):
        side = (metadata or {}).get("side")
        if side in ("policy", "reference"):
            sides[rid] = side
            if "rm_score" in metadata:
                rm[pid][side].append(-float(metadata["rm_score"]))  # a higher score is a better rank
    excluded = Membership.objects.filter(project=project, excluded=True).values_list("user_id", flat=True)
    entries = (
        RankingEntry.objects.filter(ranking__prompt_id__in=ids, ranking__is_current=True, ranking__staged=False)
        .exclude(ranking__labeler_id__in=list(excluded))
        .values_list("ranking_id", "ranking__prompt_id", "ranking__metadata", "response_id", "rank")
    )
    rankings: dict[int, dict[str, Any]] = {}
    for ranking_id, pid, metadata, rid, rank in entries:
        judged = rankings.setdefault(ranking_id, {"prompt": pid, "metadata": metadata or {}, "policy": [],
                                                  "reference": []})  # fmt: skip
        if rid in sides:
            judged[sides[rid]].append(rank)
    human = win_rate((Judgment(r["prompt"], r["policy"], r["reference"]) for r in rankings.values()),
                     n_boot=n_boot, seed=seed)  # fmt: skip
    predicted = win_rate((Judgment(pid, s["policy"], s["reference"]) for pid, s in rm.items()), n_boot=n_boot,
                         seed=seed) if rm else None  # fmt: skip
    simulated = sum(SIMULATED_MARK in str(r["metadata"].get("source", "")) for r in rankings.values())
    return {"run_id": run, "round": round_, "policy": batch["info"].get("policy", ""),
            "reference": batch["info"].get("reference", ""), "prompts": len(ids), "rankings": len(rankings),
            "simulated_rankings": simulated, "human": human.as_dict(), "few_prompts": human.prompts < FEW_PROMPTS,
            "rm": predicted.as_dict() if predicted else None}  # fmt: skip
