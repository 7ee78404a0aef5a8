"""Policy runs (SFT, PPO, DPO, GRPO/RLOO and the offline default chain): create them from a project, with the input
files each stage reads, and resolve their policies and reward models.

Files written into runs/<id>/data/ (the run keeps them, like a reward-model run keeps its export snapshot):

- `prompts.jsonl` / `eval_prompts.jsonl`: one `{"prompt", "prompt_id", "category"}` per non-gold prompt of the
  export's train / test side (the same seeded, near-duplicate-aware split as `export_preferences`), so held-out
  prompts stay held out from PPO and GRPO too;
- `sft.jsonl` / `sft_eval.jsonl`: each ranked prompt with its consensus best response (`completion`): the lowest mean
  rank over the current, unflagged rankings of labelers who are not excluded; ties go to the response ranked first
  most often, then to the lower index;
- the preference export (`train.jsonl`, `test.jsonl`, `eval.jsonl`, `export_meta.json`) for DPO and the chain.
"""

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction

from annotation.exports.options import ExportOptions
from annotation.exports.run import split_prompts
from annotation.models import Membership, Project, Prompt, RankingEntry, Response
from annotation.selectors import is_admin
from rlhf.models import TrainingRun
from rlhf.services.model_refs import config_models_check, model_ref_check
from rlhf.services.runs import RUN_CONFIG_INVALID, RUN_CONFIG_UNKNOWN, _export_snapshot, runs_root, timestamped
from rlhf.services.scoring import _prompt_input
from rlhf.training.ppo_config import DEFAULT as DEFAULT_POLICY
from rlhf.training.ppo_config import ChainConfig, DPORunConfig, GRPORunConfig, PPORunConfig, SFTRunConfig

Kind = TrainingRun.Kind
POLICY_KINDS = (Kind.SFT, Kind.PPO, Kind.DPO, Kind.GRPO, Kind.CHAIN)
CONFIG_CLASSES = {Kind.SFT: SFTRunConfig, Kind.PPO: PPORunConfig, Kind.DPO: DPORunConfig, Kind.GRPO: GRPORunConfig,
                  Kind.CHAIN: ChainConfig}  # fmt: skip
# Paths and models the service sets per run: a caller passes `policy` and `reward_run` instead.
POLICY_MANAGED_FIELDS = {
    Kind.SFT: {"train_file", "eval_file", "output_dir", "tokenizer_texts_file"},
    Kind.PPO: {"policy", "reward_model", "train_file", "eval_file", "output_dir"},
    Kind.DPO: {"policy", "train_file", "eval_file", "output_dir"},
    Kind.GRPO: {"policy", "reward_model", "train_file", "output_dir"},
    Kind.CHAIN: {"sft_file", "pairs_file", "eval_pairs_file", "prompts_file", "eval_prompts_file", "output_dir"},
}
NEEDS_REWARD = {Kind.PPO, Kind.GRPO}
NEEDS_POLICY = {Kind.PPO, Kind.DPO, Kind.GRPO}

POLICY_KIND_UNKNOWN = "Unknown policy run kind {kind!r}; use one of: {choices}."
REWARD_REQUIRED = "A {kind} run needs a finished reward-model run (reward_run)."
RUN_NOT_FOUND = "No training run {id} that you may use."
RUN_NOT_POLICY = "Run {id} is a {kind} run, not a policy (use an SFT, PPO, DPO, GRPO or chain run)."
RUN_NOT_REWARD = "Run {id} is a {kind} run, not a reward model."
RUN_NOT_DONE = "Run {id} has not succeeded (status {status}): it has no model yet."
NO_PROMPTS = "Project '{slug}' has no non-gold prompts on the training side of its split."
NO_BEST = "Project '{slug}' has no ranked prompts on the training side yet: SFT needs their best-ranked responses."
HEADLINE = [
    ("Held-out reward before", "ppo/eval_reward_before"),
    ("Held-out reward after", "ppo/eval_reward_after"),
    ("Gain (reward SDs)", "ppo/eval_reward_gain_std"),
    ("Gain, reward model alone (SDs)", "ppo/eval_score_gain_std"),
    ("KL at the end (nats)", "ppo/kl_final"),
    ("Token entropy at the end", "ppo/token_entropy"),
    ("Reward-model accuracy", "eval/accuracy"),
]
RUN_REF = re.compile(r"^(?:run[:#-]?)?(\d+)$", re.IGNORECASE)
DEFAULT_EXPORT = {"test_ratio": 0.1}


# --- policies and reward models --------------------------------------------------------------------------------------


def policy_dir(run: TrainingRun) -> Path:
    """Where a succeeded policy run's model is: the output dir (a chain: its PPO stage)."""
    out = Path(run.output_dir)
    return out / "ppo" if run.kind == Kind.CHAIN else out


def reward_dir(run: TrainingRun) -> Path:
    out = Path(run.output_dir)
    return out / "reward" if run.kind == Kind.CHAIN else out


def _run_for(user: AbstractUser | None, run_id: int) -> TrainingRun:
    run = TrainingRun.objects.select_related("project").filter(pk=run_id).first()
    if run is None:
        raise ValidationError(RUN_NOT_FOUND.format(id=run_id))
    if user is not None and not is_admin(user):
        manages = Membership.objects.filter(project_id=run.project_id, user=user, role=Membership.Role.MANAGER)
        if not manages.exists():
            raise ValidationError(RUN_NOT_FOUND.format(id=run_id))
    return run


def policy_resolve(*, policy: "str | TrainingRun", user: AbstractUser | None = None) -> tuple[str, TrainingRun | None]:
    """(model path or id, the run it came from). `policy`: a run, 'run:ID' / 'ID', a local path or a model id."""
    run = policy if isinstance(policy, TrainingRun) else None
    if run is None:
        match = RUN_REF.match(str(policy).strip())
        if not match:
            return str(policy).strip(), None
        run = _run_for(user, int(match.group(1)))
    if run.kind not in POLICY_KINDS:
        raise ValidationError(RUN_NOT_POLICY.format(id=run.pk, kind=run.get_kind_display()))
    if run.status != TrainingRun.Status.SUCCEEDED or not run.output_dir:
        raise ValidationError(RUN_NOT_DONE.format(id=run.pk, status=run.status))
    return str(policy_dir(run)), run


def reward_resolve(*, reward_run: "int | TrainingRun", user: AbstractUser | None = None) -> TrainingRun:
    run = reward_run if isinstance(reward_run, TrainingRun) else _run_for(user, int(reward_run))
    if run.kind not in (Kind.REWARD_MODEL, Kind.CHAIN):
        raise ValidationError(RUN_NOT_REWARD.format(id=run.pk, kind=run.get_kind_display()))
    if run.status != TrainingRun.Status.SUCCEEDED or not run.output_dir:
        raise ValidationError(RUN_NOT_DONE.format(id=run.pk, status=run.status))
    return run


# --- input files ---------------------------------------------------------------------------------------------------


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
            {"prompt": _prompt_input(prompt, conversational), "prompt_id": prompt.pk, "category": prompt.category}
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


# --- create --------------------------------------------------------------------------------------------------------


def policy_config_validate(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The caller's config fields checked against the kind's dataclass (paths and models excluded)."""
    if kind not in CONFIG_CLASSES:
        raise ValidationError(POLICY_KIND_UNKNOWN.format(kind=kind, choices=", ".join(CONFIG_CLASSES)))
    cls, managed = CONFIG_CLASSES[kind], POLICY_MANAGED_FIELDS[kind]
    unknown = sorted(set(config) - (set(cls.__dataclass_fields__) - managed))
    if unknown:
        raise ValidationError(RUN_CONFIG_UNKNOWN.format(names=", ".join(unknown)))
    try:
        return cls(**config).to_dict()
    except (TypeError, ValueError) as exc:
        raise ValidationError(RUN_CONFIG_INVALID.format(error=exc)) from None


def _sources(kind: str, policy: str, reward_run, user) -> tuple[str, TrainingRun | None, TrainingRun | None]:
    """(policy path or id, its run, the reward run), checked for the kind (PPO takes a reward model on any tokenizer:
    the run re-encodes responses for it). PPO, DPO and GRPO without a policy start from the default policy (SmolLM2,
    'default')."""
    label = TrainingRun.Kind(kind).label
    if kind in NEEDS_POLICY and not str(policy or "").strip():
        policy = DEFAULT_POLICY
    if kind in NEEDS_REWARD and reward_run in (None, ""):
        raise ValidationError(REWARD_REQUIRED.format(kind=label))
    path, policy_run = policy_resolve(policy=policy, user=user) if str(policy or "").strip() else ("", None)
    reward = reward_resolve(reward_run=reward_run, user=user) if kind in NEEDS_REWARD else None
    return path, policy_run, reward


@transaction.atomic
def policy_run_create(
    *,
    project: Project,
    kind: str,
    user: AbstractUser | None = None,
    name: str = "",
    config: dict[str, Any] | None = None,
    policy: "str | TrainingRun" = "",
    reward_run: "int | TrainingRun | None" = None,
    export_options: dict[str, Any] | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """Check the settings, write the stage's input files into runs/<id>/data/, save the run queued and (after
    commit) enqueue it. Nothing is trained here. ValidationError (nothing saved) on a bad config, a missing or
    unfinished policy/reward run, a reward model on another tokenizer (PPO), or a project with nothing to train on."""
    resolved = policy_config_validate(kind, dict(config or {}))
    config_models_check(config=dict(config or {}), project=project, user=user)
    if not isinstance(policy, TrainingRun):
        model_ref_check(value=policy, project=project, user=user, what="policy")
    path, policy_run, reward = _sources(kind, policy, reward_run, user)
    try:
        options = ExportOptions(**(DEFAULT_EXPORT | dict(export_options or {})))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"Invalid export options: {exc}") from None
    run = TrainingRun.objects.create(project=project, kind=kind, name=name, created_by=user, config=resolved)
    run_dir = runs_root() / str(run.pk)
    try:
        inputs = _inputs_write(kind, project, run_dir / "data", options)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    resolved |= _paths(kind, inputs, run_dir / "model", path, reward)
    run.config = resolved
    run.name = name or f"{project.slug} {TrainingRun.Kind(kind).label} #{run.pk}"
    run.export = {**inputs, "policy": path, "policy_run": policy_run and policy_run.pk,
                  "reward_run": reward and reward.pk}  # fmt: skip
    run.run_dir, run.data_dir, run.output_dir = str(run_dir), str(run_dir / "data"), str(run_dir / "model")
    counts = f"{inputs['train_prompts']} training prompts, {inputs['test_prompts']} held out"
    run.log_tail = timestamped(f"Queued: {counts}.")
    run.save()
    if enqueue:
        from rlhf.services.runs import training_run_enqueue  # noqa: PLC0415

        transaction.on_commit(lambda: training_run_enqueue(run=run))
    return run


def _inputs_write(kind: str, project: Project, data_dir: Path, options: ExportOptions) -> dict[str, Any]:
    inputs = policy_inputs_write(
        project=project, data_dir=data_dir, options=options, sft=kind in (Kind.SFT, Kind.CHAIN)
    )
    inputs["options"] = options.as_dict()
    if kind in (Kind.DPO, Kind.CHAIN):
        snapshot = _export_snapshot(project=project, data_dir=data_dir, options=options.as_dict())
        snapshot.pop("test_prompt_ids")
        inputs |= {k: v for k, v in snapshot.items() if k != "options"}
        inputs["test_file"] = str(data_dir / "test.jsonl") if snapshot["test_pairs"] else None
    return inputs


def _paths(kind: str, inputs: dict, out: Path, policy: str, reward: TrainingRun | None) -> dict[str, Any]:
    if kind == Kind.SFT:
        paths = {"train_file": inputs["sft_file"], "eval_file": inputs["sft_eval_file"], "output_dir": str(out)}
        return paths | ({"base_model": policy} if policy else {})
    if kind == Kind.PPO:
        return {"policy": policy, "reward_model": str(reward_dir(reward)), "train_file": inputs["prompts_file"],
                "eval_file": inputs["eval_prompts_file"], "output_dir": str(out)}  # fmt: skip
    if kind == Kind.GRPO:
        return {"policy": policy, "reward_model": str(reward_dir(reward)), "train_file": inputs["prompts_file"],
                "output_dir": str(out)}  # fmt: skip
    if kind == Kind.DPO:
        return {"policy": policy, "train_file": inputs["train_file"], "eval_file": inputs["test_file"],
                "output_dir": str(out)}  # fmt: skip
    return {"sft_file": inputs["sft_file"], "pairs_file": inputs["train_file"], "eval_pairs_file": inputs["test_file"],
            "prompts_file": inputs["prompts_file"], "eval_prompts_file": inputs["eval_prompts_file"],
            "output_dir": str(out)}  # fmt: skip


def finished_runs_get(*, project: Project, kinds: tuple[str, ...]):
    """The project's succeeded runs of these kinds, newest first (the new-run form's choices)."""
    runs = TrainingRun.objects.filter(project=project, kind__in=kinds, status=TrainingRun.Status.SUCCEEDED)
    return runs.order_by("-created_at", "-id")


def ppo_page_get(run: TrainingRun) -> dict[str, Any]:
    """What a policy run's page shows besides the curves: warnings (final, or the log's while it runs) and the
    held-out samples before and after training, side by side (samples.json of the PPO output)."""
    if run.kind not in POLICY_KINDS:
        return {}
    warnings = list((run.metrics or {}).get("warnings") or [])
    if not warnings:
        parts = [part.strip() for line in run.log_tail.splitlines() for part in line.split("WARNING: ")[1:]]
        warnings = list(dict.fromkeys(parts))
    samples: list[dict[str, Any]] = []
    if run.status == TrainingRun.Status.SUCCEEDED and run.output_dir:
        file = policy_dir(run) / "samples.json"
        if file.is_file():
            samples = json.loads(file.read_text(encoding="utf-8"))
    for sample in samples:
        prompt = sample.get("prompt")
        sample["prompt_text"] = (
            prompt
            if isinstance(prompt, str)
            else "\n".join(f"{turn.get('role')}: {turn.get('content')}" for turn in prompt or [])
        )
        sample["gain"] = (sample.get("after_reward") or 0.0) - (sample.get("before_reward") or 0.0)
    metrics = run.metrics or {}
    headline = [(label, metrics.get(key)) for label, key in HEADLINE if key in metrics]
    return {"warnings": warnings, "samples": samples, "headline": headline,
            "policy_dir": str(policy_dir(run)) if run.output_dir else ""}  # fmt: skip
