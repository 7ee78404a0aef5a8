"""The files a run reads, written from its project before it trains (into runs/<id>/data/), by the registry's
`inputs` of its kind (rlhf/training/registry.py):

- `preferences`: the preference export (`train.jsonl`, `test.jsonl`, `export_meta.json`), exactly as
  `manage.py export_preferences` writes it, plus `eval.jsonl`: test.jsonl with each pair's guideline version;
- `prompts`: `prompts.jsonl` / `eval_prompts.jsonl`, one `{"prompt", "prompt_id", "category"}` per non-gold prompt of
  the export's train / test side (the same seeded, near-duplicate-aware split as the export), so held-out prompts
  stay held out from PPO and GRPO too;
- `demonstrations`: `sft.jsonl` / `sft_eval.jsonl`, each ranked prompt with its consensus best response
  (`completion`): the lowest mean rank over the current, unflagged rankings of labelers who are not excluded; ties go
  to the response ranked first most often, then to the lower index.
"""

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError

from annotation.exports.options import ExportOptions
from annotation.exports.run import split_prompts
from annotation.models import Membership, Project, Prompt, Ranking, RankingEntry, Response
from annotation.services.exports import preference_export_create
from rlhf.services.common import RUN_NO_PAIRS, prompt_input
from rlhf.training.registry import DEMONSTRATIONS, PREFERENCES, PROMPTS, Stage

NO_PROMPTS = "Project '{slug}' has no non-gold prompts on the training side of its split."
NO_BEST = "Project '{slug}' has no ranked prompts on the training side yet: SFT needs their best-ranked responses."
DEFAULT_EXPORT = {"test_ratio": 0.1}


def export_snapshot_write(*, project: Project, data_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Write the project's JSONL export (train.jsonl, test.jsonl, export_meta.json) into data_dir, exactly as
    `manage.py export_preferences` would, plus eval.jsonl: test.jsonl with each pair's guideline version, for the
    per-version accuracy. Raises ValidationError when there is nothing to train on."""
    try:
        export_options = ExportOptions(**options)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"Invalid export options: {exc}") from None
    if export_options.dataset != "pairs":
        raise ValidationError("A reward model trains on preference pairs: export dataset must be pairs.")
    result = preference_export_create(project=project, out=data_dir, fmt="jsonl", options=export_options)
    train, test, evaluation = data_dir / "train.jsonl", data_dir / "test.jsonl", data_dir / "eval.jsonl"
    train_pairs = _count_lines(train)
    if not train_pairs:
        raise ValidationError(RUN_NO_PAIRS.format(slug=project.slug))
    test_prompt_ids, test_pairs = _eval_file_write(test, evaluation)
    return {
        "options": export_options.as_dict(),
        "train_file": str(train),
        "eval_file": str(evaluation) if test_pairs else None,
        "train_pairs": train_pairs,
        "test_pairs": test_pairs,
        "content_hash": result.meta.get("content_hash"),
        "counts": result.meta.get("counts", {}),
        "test_prompt_ids": test_prompt_ids,
    }


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _eval_file_write(test: Path, evaluation: Path) -> tuple[list[int], int]:
    """Copy the test split adding `guideline_version` (the ranking's; for aggregated pairs the prompt's rankings'
    version when they share one, else 'mixed'). Returns the test prompt ids and the number of pairs."""
    rows = [json.loads(line) for line in test.read_text().splitlines() if line.strip()] if test.exists() else []
    prompt_ids = sorted({int(row["prompt_id"]) for row in rows if row.get("prompt_id") is not None})
    by_ranking, by_prompt = {}, defaultdict(set)
    for ranking_id, prompt_id, version in Ranking.objects.filter(prompt_id__in=prompt_ids, is_current=True).values_list(
        "id", "prompt_id", "guideline_version"
    ):
        by_ranking[ranking_id] = version
        by_prompt[prompt_id].add(version)
    with evaluation.open("w", encoding="utf-8") as out:
        for row in rows:
            versions = by_prompt.get(row.get("prompt_id"), set())
            version = by_ranking.get(row.get("ranking_id"), next(iter(versions)) if len(versions) == 1 else "mixed")
            row["guideline_version"] = version
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return prompt_ids, len(rows)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def prompt_split_get(*, project: Project, options: ExportOptions) -> dict[int, str]:
    """{prompt id: 'train' | 'test'} for the project's non-gold prompts, exactly as the export splits them."""
    prompts = Prompt.objects.filter(project=project, is_gold=False).order_by("id")
    split = split_prompts(options, lambda: prompts.values_list("id", "text").iterator(chunk_size=5000))
    return split.sides(split.ids.tolist()) if len(split.ids) else {}


def best_responses_get(*, project: Project, prompt_ids: list[int]) -> dict[int, int]:
    """{prompt id: its consensus best response id} over current, unflagged rankings of labelers not excluded."""
    excluded = Membership.objects.filter(project=project, excluded=True).values_list("user_id", flat=True)
    entries = (
        RankingEntry.objects.filter(ranking__project=project, ranking__is_current=True, ranking__staged=False,
                                    ranking__flags=[],
                                    ranking__prompt_id__in=prompt_ids, ranking__prompt__is_gold=False)
        .exclude(ranking__labeler_id__in=excluded)
        .order_by()
        .values_list("ranking__prompt_id", "response_id", "response__index", "rank")
    )  # fmt: skip
    ranks: dict[int, dict[tuple[int, int], list[int]]] = defaultdict(lambda: defaultdict(list))
    for prompt_id, response_id, index, rank in entries.iterator(chunk_size=5000):
        ranks[prompt_id][(index, response_id)].append(rank)
    best = {}
    for prompt_id, by_response in ranks.items():
        key = min(by_response, key=lambda r: (sum(by_response[r]) / len(by_response[r]), -by_response[r].count(1), r))
        best[prompt_id] = key[1]
    return best


def policy_inputs_write(*, project: Project, data_dir: Path, options: ExportOptions, sft: bool) -> dict[str, Any]:
    """Write prompts.jsonl / eval_prompts.jsonl (and, with `sft`, sft.jsonl / sft_eval.jsonl) into data_dir; returns
    their paths (None for an empty held-out file) and counts."""
    sides = prompt_split_get(project=project, options=options)
    prompts = list(Prompt.objects.filter(pk__in=list(sides)).order_by("id"))
    conversational = any(p.messages for p in prompts)
    rows = {"train": [], "test": []}
    for prompt in prompts:
        rows[sides[prompt.pk]].append(
            {"prompt": prompt_input(prompt, conversational), "prompt_id": prompt.pk, "category": prompt.category}
        )
    if not rows["train"]:
        raise ValidationError(NO_PROMPTS.format(slug=project.slug))
    files = {"prompts_file": data_dir / "prompts.jsonl", "eval_prompts_file": data_dir / "eval_prompts.jsonl"}
    _write_jsonl(files["prompts_file"], rows["train"])
    _write_jsonl(files["eval_prompts_file"], rows["test"])
    result = {"prompts_file": str(files["prompts_file"]), "train_prompts": len(rows["train"]),
              "eval_prompts_file": str(files["eval_prompts_file"]) if rows["test"] else None,
              "test_prompts": len(rows["test"])}  # fmt: skip
    if sft:
        result |= _sft_files_write(project, data_dir, rows, conversational)
    return result


def _sft_files_write(project: Project, data_dir: Path, rows: dict[str, list], conversational: bool) -> dict[str, Any]:
    ids = [row["prompt_id"] for side in rows.values() for row in side]
    best = best_responses_get(project=project, prompt_ids=ids)
    texts = dict(Response.objects.filter(pk__in=list(best.values())).values_list("id", "text"))
    out: dict[str, Any] = {}
    for side, name in (("train", "sft"), ("test", "sft_eval")):
        demos = []
        for row in rows[side]:
            if row["prompt_id"] in best:
                text = texts[best[row["prompt_id"]]]
                completion = [{"role": "assistant", "content": text}] if conversational else text
                demos.append({**row, "completion": completion, "response_id": best[row["prompt_id"]]})
        path = data_dir / f"{name}.jsonl"
        _write_jsonl(path, demos)
        out[f"{name}_file"] = str(path) if demos else None
        out[f"{name}_rows"] = len(demos)
    if not out["sft_rows"]:
        raise ValidationError(NO_BEST.format(slug=project.slug))
    return out


def run_inputs_write(*, stage: Stage, project: Project, data_dir: Path, options: ExportOptions) -> dict[str, Any]:
    """Write what a policy-stage run of this kind reads (its registry `inputs`); returns the paths and counts."""
    inputs: dict[str, Any] = {}
    if PROMPTS in stage.inputs:
        sft = DEMONSTRATIONS in stage.inputs
        inputs |= policy_inputs_write(project=project, data_dir=data_dir, options=options, sft=sft)
    inputs["options"] = options.as_dict()
    if PREFERENCES in stage.inputs:
        snapshot = export_snapshot_write(project=project, data_dir=data_dir, options=options.as_dict())
        snapshot.pop("test_prompt_ids")
        inputs |= {k: v for k, v in snapshot.items() if k != "options"}
        inputs["test_file"] = str(data_dir / "test.jsonl") if snapshot["test_pairs"] else None
    return inputs
